from services.notifications.config import Settings
from services.notifications.main import create_app
from tests.service_fixtures import service_fixtures

settings, engine, sessionmaker, session, app, client = service_fixtures("notifications", Settings, create_app)
