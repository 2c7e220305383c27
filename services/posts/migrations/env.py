from services.posts import models  # noqa: F401  (registers every table on the metadata)
from services.posts.config import Settings
from services.posts.db import metadata
from shared.migrations import run_env

run_env([metadata], Settings().service_database_url)
