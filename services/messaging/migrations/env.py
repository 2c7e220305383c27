from services.messaging import models  # noqa: F401  (registers every table on the metadata)
from services.messaging.config import Settings
from services.messaging.db import metadata
from shared.directory import directory_metadata
from shared.migrations import run_env

run_env([metadata, directory_metadata], Settings().service_database_url)
