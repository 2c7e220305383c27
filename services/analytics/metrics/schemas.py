from datetime import date

from pydantic import BaseModel


class DayCount(BaseModel):
    day: date
    count: int


class Overview(BaseModel):
    start: date  # inclusive
    end: date  # exclusive
    posts: int
    posts_per_day: list[DayCount]
