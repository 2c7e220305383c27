from services.messaging.config import Settings
from services.messaging.main import create_app
from tests.service_fixtures import service_fixtures

settings, engine, sessionmaker, session, app, client = service_fixtures("messaging", Settings, create_app)
