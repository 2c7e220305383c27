"""shared.db: the pool's ping of idle connections and the transaction-free sessions of read-only routes."""

import asyncio

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from shared.db import SessionDep, make_engine, make_sessionmaker, read_only, read_sessionmaker
from shared.devstack.stack import database_url


async def test_a_read_only_route_runs_without_a_transaction_and_others_in_one(scratch_engine):
    app = FastAPI()
    app.state.sessionmaker = make_sessionmaker(scratch_engine, service="scratch")
    app.state.read_sessionmaker = read_sessionmaker(scratch_engine, service="scratch")

    async def transaction_ids(session) -> list[int]:
        return [await session.scalar(text("SELECT txid_current()")) for _ in range(2)]

    @app.get("/read")
    @read_only
    async def read(session: SessionDep):
        return await transaction_ids(session)

    @app.get("/plain")
    async def plain(session: SessionDep):
        return await transaction_ids(session)

    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        first, second = (await client.get("/read")).json()
        assert first != second  # each statement on its own
        first, second = (await client.get("/plain")).json()
        assert first == second  # the unit of work: one transaction
        first, second = (await client.get("/read")).json()
        assert first != second  # and the pool gave the isolation level back in between


async def test_a_pooled_connection_that_died_while_idle_is_replaced_before_use(pg_server_url, scratch_database):
    engine = make_engine(database_url(pg_server_url, scratch_database), pool_size=1, ping_after_idle=0.05)
    try:
        async with engine.connect() as conn:
            pid = await conn.scalar(text("SELECT pg_backend_pid()"))
        killer = make_engine(database_url(pg_server_url, scratch_database), pool_size=1)
        async with killer.connect() as other:
            await other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        await killer.dispose()
        await asyncio.sleep(0.1)  # idle longer than ping_after_idle: pinged, found dead, replaced
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT pg_backend_pid()")) != pid
    finally:
        await engine.dispose()


async def test_a_statement_compiled_once_runs_as_driver_sql_with_its_literals_and_refuses_processed_values(
        scratch_engine):
    from sqlalchemy import Integer, String, bindparam, literal, select
    from sqlalchemy.types import PickleType

    from shared.db import compiled_sql, driver_args

    statement = select(literal("kept").label("word"), (bindparam("n", type_=Integer) + 1).label("next"))
    compiled = compiled_sql(statement, scratch_engine.dialect)
    assert compiled is compiled_sql(statement, scratch_engine.dialect)  # compiled once
    async with scratch_engine.connect() as conn:
        row = (await conn.exec_driver_sql(compiled[0], driver_args(compiled, {"n": 41}))).one()
    assert tuple(row) == ("kept", 42)
    processed = select(bindparam("blob", type_=PickleType), bindparam("s", type_=String))
    with pytest.raises(TypeError):
        compiled_sql(processed, scratch_engine.dialect)
