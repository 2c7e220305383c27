from services.analytics.config import Settings
from services.analytics.main import create_app
from tests.service_fixtures import service_fixtures

settings, engine, sessionmaker, session, app, client = service_fixtures("analytics", Settings, create_app)
