from typing import ClassVar

from shared.config import HearthSettings


class Settings(HearthSettings):
    service_name: ClassVar[str] = "messaging"
