"""The hot path's Lua scripts, sent to Redis on a lane of our own (issue 17).

Every request runs the rate-limit script, and breaker snapshots are renewed in one
pipeline of ``EVALSHA``. Through redis-py 8.1 under gevent such a call cost 125-250 µs
of the caller's CPU, most of it redis-py's own machinery rather than the round trip:
``ConnectionPool.get_connection`` behind a deprecated-arguments wrapper that inspects
its signature on every call, a ``can_read`` poll of the socket per command (it guards
against a connection given back with a reply still unread), ``Retry.call_with_retry``,
event dispatch and metrics hooks. This module sends those few commands itself: a
per-process pool of plain sockets, commands packed in RESP by hand, replies parsed in C
by ``hiredis.Reader``, and redis-py's exceptions (``redis.exceptions.*``, mapped by its
own ``parse_error``), so the stores and ``RedisBoundary`` catch exactly what they did.
redis-py stays for everything else (the response cache, admin actions, SCRIPT LOAD's
callers off the hot path, health checks); this is only ``EVALSHA``, one or a batch.

Why a lane rather than a leaner redis-py pool (a ``ConnectionPool`` subclass without
the wrapper and the poll): both were measured in isolation (``bench/redis_calls.py``,
CPU per rate-limit script call under gevent: redis-py ~95 µs, the leaner pool ~55 µs,
the lane ~30 µs; a batch of five breaker ``PEEK``: ~130 µs as a redis-py pipeline, ~50
µs on the lane). The subclass removes less (the command still goes through
``call_with_retry``, the packer and the parser layers) and cannot drop the poll safely:
redis-py gives a connection back to its pool from a ``finally`` even when the greenlet
was killed between the command and its reply, and the poll is what catches that.

The rules it keeps:

* a connection is taken out of the pool for the whole command and put back only after
  its complete reply, so no two greenlets interleave on one, and one broken mid-command
  (an error, a timeout, a greenlet killed while it waits) is closed, never reused;
* the client's timeouts (``socket_connect_timeout``, ``socket_timeout``: 0.25 s) and its
  one retry of a ``ConnectionError``/``TimeoutError`` on a fresh connection (pooled
  connections gone stale after a Redis restart: the idle ones are dropped with it), as
  ``wiring.redis_client`` configures;
* ``NOSCRIPT`` (a Redis restart, ``SCRIPT FLUSH``) loads the script and sends it again;
* Sentinel: each new connection asks the sentinels' pool for the primary's address, a
  ``READONLY`` reply (a demoted primary) closes the connection as a ``ConnectionError``,
  and pooled connections to a former primary are dropped;
* after a fork the child starts with an empty pool (the parent's sockets are its own).

A client the lane does not speak for (TLS, a Unix socket, RESP3, a client-side cache, a
client name, a credential provider, decoded replies) gets the same interface on redis-py
(``_PyScript``): ``script(keys, args)``, ``script.many(calls)`` and ``script.shared(keys, args)``.

``shared`` (the rate limit's call) coalesces: under gevent the runs of one script that
start in the same loop iteration go out as one pipelined write and come back in one read
(``_Batch``), instead of a ``send`` each (38-40 µs of CPU on this VM, most of it the
kernel's loopback path). The first run of an iteration schedules the flush, a hub callback
at the loop's next turn (after the greenlets this iteration woke), and every run waits;
the flush hands the batch to its first caller still waiting, who sends it through
``Lane.execute`` (so every rule above holds for the batch) and wakes the others each with
its own reply or its own error. A run that no other greenlet can follow in its iteration
(no watcher left to run, no callback queued) goes alone at once, as ``__call__``: the
callback and the switches would cost it ~5 µs for nothing. A caller killed before the
flush is dropped with its command; one killed while it waits for the batch's replies only
loses its own (the lead reads them all); a lead killed in the round trip hands the others'
runs to a new lead, which sends them again on a new connection (as the lane's retry would).
"""

from __future__ import annotations

import contextlib
import copy
import os
import socket
from collections.abc import Sequence
from typing import Any, Protocol

import hiredis
from gevent import get_hub, monkey
from gevent.hub import Waiter
from redis import Redis
from redis._parsers.base import BaseParser
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, InvalidResponse, NoScriptError, ReadOnlyError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

Call = tuple[Sequence[Any], Sequence[Any]]  # (keys, args) of one script run

# Idle connections kept per process beyond this are closed: a burst needs no more later.
_MAX_IDLE = 64


class HotScript(Protocol):
    sha: str

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any: ...

    def many(self, calls: Sequence[Call]) -> list[Any]:
        """Each call's reply, or its error (an exception instance), in one round trip."""
        ...

    def shared(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        """As ``__call__``; under gevent sent in one round trip with the other runs of
        this script that start in the same loop iteration."""
        ...


def register(client: Redis, source: str) -> HotScript:
    """The script on the client's lane, or on redis-py when the lane cannot speak for it."""
    lane = lane_for(client)
    py = _PyScript(client, source)
    return py if lane is None else LaneScript(lane, py)


def lane_for(client: Redis) -> Lane | None:
    """One lane per client (per process: it drops the pool after a fork)."""
    lane: Lane | None = getattr(client, "_gateway_lane", None)
    if lane is None and not hasattr(client, "_gateway_lane"):
        lane = Lane.for_pool(client.connection_pool)
        client._gateway_lane = lane  # type: ignore[attr-defined]
    return lane


def _encode(value: Any) -> bytes:
    """redis-py's ``Encoder.encode`` for our arguments (bytes, str, int, float)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, bool):
        raise DataError("Invalid input of type: 'bool'. Convert to a bytes, string, int or float first.")
    if isinstance(value, int | float):
        return repr(value).encode()
    raise DataError(f"Invalid input of type: '{type(value).__name__}'. Convert to a bytes, string, int or float first.")


def pack(*parts: Any) -> bytes:
    """One command in RESP: ``*<n>`` then ``$<len>`` and the bytes of each part."""
    out = [b"*%d\r\n" % len(parts)]
    for part in parts:
        data = _encode(part)
        out.append(b"$%d\r\n" % len(data))
        out.append(data)
        out.append(b"\r\n")
    return b"".join(out)


def _socket_error(error: OSError) -> RedisError:
    """A socket's error as redis-py raises it."""
    if isinstance(error, TimeoutError):  # socket.timeout
        return RedisTimeoutError("Timeout reading from socket")
    return RedisConnectionError(f"Error while reading from socket: {error.args}")


def _reply_error(message: str) -> Exception:
    return BaseParser.parse_error(message)  # type: ignore[no-untyped-call,no-any-return]  # redis-py maps the code to its class


class _Connection:
    __slots__ = ("address", "reader", "sock")

    def __init__(self, sock: socket.socket, address: tuple[str, int]) -> None:
        self.sock = sock
        self.address = address
        self.reader = hiredis.Reader(protocolError=InvalidResponse, replyError=_reply_error)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class Lane:
    """A per-process pool of connections to one Redis, for ``EVALSHA`` and its batches."""

    def __init__(
        self,
        *,
        address: Any,
        db: int = 0,
        username: str | None = None,
        password: str | None = None,
        socket_timeout: float | None = None,
        connect_timeout: float | None = None,
        retries: int = 1,
        sentinel_pool: Any = None,
    ) -> None:
        self._address = address  # (host, port), or a callable that answers it (Sentinel)
        self._hello = b""
        if password:
            self._hello += pack("AUTH", *([username] if username else []), password)
        if db:
            self._hello += pack("SELECT", db)
        self._hello_replies = (1 if password else 0) + (1 if db else 0)
        self._timeout = socket_timeout
        self._connect_timeout = connect_timeout
        self._retries = retries
        self._sentinel_pool = sentinel_pool
        self._idle: list[_Connection] = []
        self._pid = os.getpid()

    @classmethod
    def for_pool(cls, pool: Any) -> Lane | None:
        """From a redis-py pool's settings; None for what the lane does not speak (TLS, Unix socket, RESP3...)."""
        from redis.connection import Connection
        from redis.sentinel import SentinelConnectionPool, SentinelManagedConnection

        kwargs = pool.connection_kwargs
        sentinel = isinstance(pool, SentinelConnectionPool)
        if pool.connection_class not in ((SentinelManagedConnection,) if sentinel else (Connection,)):
            return None
        if sentinel and not pool.is_master:
            return None
        if getattr(pool, "cache", None) is not None or kwargs.get("protocol") not in (None, 2, "2"):
            return None
        if kwargs.get("credential_provider") is not None or kwargs.get("decode_responses") or kwargs.get("client_name"):
            return None
        retry = kwargs.get("retry")
        tcp = (kwargs.get("host", "localhost"), kwargs.get("port", 6379))
        return cls(
            address=pool.get_master_address if sentinel else tcp,
            db=int(kwargs.get("db") or 0),
            username=kwargs.get("username"),
            password=kwargs.get("password"),
            socket_timeout=kwargs.get("socket_timeout"),
            connect_timeout=kwargs.get("socket_connect_timeout") or kwargs.get("socket_timeout"),
            retries=retry.get_retries() if retry is not None else 0,
            sentinel_pool=pool if sentinel else None,
        )

    def execute(self, packed: bytes, replies: int) -> list[Any]:
        """Send ``packed`` (``replies`` commands), answer their replies; error replies as
        exception instances. Raises ConnectionError/TimeoutError, after ``retries`` more
        tries on a new connection each."""
        attempt = 0
        while True:
            try:
                return self._once(packed, replies)
            except (RedisConnectionError, RedisTimeoutError):
                if attempt >= self._retries:
                    raise
                attempt += 1
                # The idle connections share the failed one's fate (a Redis restart leaves
                # them all dead): the retry connects anew, as redis-py's reconnects.
                self.close()

    def _once(self, packed: bytes, replies: int) -> list[Any]:
        conn = self._take()
        try:
            conn.sock.sendall(packed)
            answers = [self._read(conn) for _ in range(replies)]
        except BaseException as error:  # a killed greenlet included: the reply may still come
            conn.close()
            if isinstance(error, OSError):
                raise _socket_error(error) from None
            raise
        for answer in answers:
            if isinstance(answer, ReadOnlyError) and self._sentinel_pool is not None:
                conn.close()  # a demoted primary: ask the sentinels again
                raise RedisConnectionError("The previous master is now a slave")
        self._give_back(conn)
        return answers

    def _read(self, conn: _Connection) -> Any:
        reader = conn.reader
        answer = reader.gets()
        while answer is False:
            data = conn.sock.recv(65536)
            if not data:
                raise RedisConnectionError("Connection closed by server.")
            reader.feed(data)
            answer = reader.gets()
        return answer

    def _take(self) -> _Connection:
        if self._pid != os.getpid():  # forked: the parent's sockets are not ours
            self._idle, self._pid = [], os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            return self._connect()

    def _give_back(self, conn: _Connection) -> None:
        pool = self._sentinel_pool
        if len(self._idle) >= _MAX_IDLE or (pool is not None and pool.master_address != conn.address):
            conn.close()  # a burst's extra, or a connection to a former primary
        else:
            self._idle.append(conn)

    def _connect(self) -> _Connection:
        address = self._address() if callable(self._address) else self._address
        try:
            sock = socket.create_connection(address, timeout=self._connect_timeout)
        except TimeoutError:
            raise RedisTimeoutError("Timeout connecting to server") from None
        except OSError as error:
            raise RedisConnectionError(f"Error connecting to {address[0]}:{address[1]}. {error}") from None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(self._timeout)
        conn = _Connection(sock, tuple(address))
        if self._hello:
            try:
                sock.sendall(self._hello)
                for _ in range(self._hello_replies):
                    answer = self._read(conn)
                    if isinstance(answer, Exception):
                        raise answer
            except BaseException as error:
                conn.close()
                if isinstance(error, OSError):
                    raise _socket_error(error) from None
                raise
        return conn

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _PyScript:
    """The interface on redis-py: its ``Script`` for one run, a pipeline for a batch."""

    def __init__(self, client: Redis, source: str) -> None:
        self._client = client
        self._source = source
        self._script = client.register_script(source)
        self.sha: str = self._script.sha

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        return self._script(keys=keys, args=args)

    shared = __call__  # redis-py's pool: one round trip per run, as before

    def many(self, calls: Sequence[Call]) -> list[Any]:
        raws = self._pipelined(calls)
        if any(isinstance(raw, NoScriptError) for raw in raws):
            self._client.script_load(self._source)  # Redis restarted or flushed its scripts
            raws = self._pipelined(calls)
        return raws

    def _pipelined(self, calls: Sequence[Call]) -> list[Any]:
        # EVALSHA straight into the pipeline: redis-py's pipelined Script objects ask
        # SCRIPT EXISTS first, a second round trip.
        pipe = self._client.pipeline(transaction=False)
        for keys, args in calls:
            pipe.execute_command("EVALSHA", self.sha, len(keys), *keys, *args)  # type: ignore[no-untyped-call]
        raws: list[Any] = pipe.execute(raise_on_error=False)
        return raws


class LaneScript:
    """A Lua script run by ``EVALSHA`` on the lane; loaded (SCRIPT LOAD) when Redis lacks it."""

    def __init__(self, lane: Lane, py: _PyScript) -> None:
        self._lane = lane
        self._py = py  # its source, its sha, and the redis-py way (bench/ab/redis_lane.py)
        self.sha = py.sha
        self._batch: _Batch | None = None  # the runs of this loop iteration, not yet sent

    def __call__(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        packed = pack("EVALSHA", self.sha, len(keys), *keys, *args)
        (answer,) = self._lane.execute(packed, 1)
        if isinstance(answer, NoScriptError):
            self._load()
            (answer,) = self._lane.execute(packed, 1)
        if isinstance(answer, RedisError):
            raise answer
        return answer

    def many(self, calls: Sequence[Call]) -> list[Any]:
        packed = b"".join(pack("EVALSHA", self.sha, len(keys), *keys, *args) for keys, args in calls)
        answers = self._lane.execute(packed, len(calls))
        if any(isinstance(answer, NoScriptError) for answer in answers):
            self._load()
            answers = self._lane.execute(packed, len(calls))
        return answers

    def _load(self) -> None:
        (answer,) = self._lane.execute(pack("SCRIPT", "LOAD", self._py._source), 1)
        if isinstance(answer, Exception):
            raise answer

    def shared(self, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> Any:
        if not _gevent_sockets():
            return self(keys, args)  # threads: each call on its own connection
        hub = get_hub()
        batch = self._batch
        if batch is None or batch.hub is not hub:  # the iteration's first run (another thread's batch is its own)
            loop = hub.loop
            if not loop.pendingcnt and not getattr(loop, "_callbacks", True):
                # No watcher left to run in this loop iteration, no callback queued (gevent's
                # queue; a loop without one batches): no other greenlet runs before the next
                # poll, so none could share the round trip.
                return self(keys, args)
            batch = self._batch = _Batch(hub, [], [])
            # the flush: at the hub's next turn, after the greenlets this iteration woke
            loop.run_callback(self._hand_over, batch)
        waiter = Waiter(hub)
        batch.commands.append(pack("EVALSHA", self.sha, len(keys), *keys, *args))
        batch.waiters.append(waiter)
        answer = waiter.get()
        if type(answer) is _Batch:  # this caller leads the batch: it makes the round trip
            answer = self._flush(answer)
        if type(answer) is _Failed:
            raise copy.copy(answer.error)  # an instance of its own: each caller's raise writes its traceback
        if isinstance(answer, RedisError):
            raise answer
        return answer

    def _hand_over(self, batch: _Batch) -> None:
        """In the hub: the batch to its first caller still waiting (one killed meanwhile
        is dropped with its command), who sends it."""
        if self._batch is batch:
            self._batch = None  # runs starting from now make the next batch
        waiters = batch.waiters
        for waiter in waiters:
            if waiter.greenlet is None:  # killed while it waited: not sent
                live = [i for i, waiter in enumerate(waiters) if waiter.greenlet is not None]
                batch.commands = [batch.commands[i] for i in live]
                batch.waiters = waiters = [waiters[i] for i in live]
                break
        if waiters:
            waiters[0].switch(batch)

    def _flush(self, batch: _Batch) -> Any:
        """The batch's one write and read, by its lead (``waiters[0]``): the others are woken
        with theirs, the lead's own answer returned."""
        commands, waiters = batch.commands, batch.waiters
        try:
            answers = self._lane.execute(b"".join(commands), len(commands))
            if NoScriptError in map(type, answers):  # Redis restarted or flushed its scripts: load once, resend those
                missing = [i for i, answer in enumerate(answers) if isinstance(answer, NoScriptError)]
                self._load()
                again = self._lane.execute(b"".join(commands[i] for i in missing), len(missing))
                for i, answer in zip(missing, again, strict=True):
                    answers[i] = answer
        except Exception as error:  # noqa: BLE001 - every caller of the batch raises it (a copy each)
            answers = [_Failed(error)] * len(commands)
        except BaseException:
            # The lead killed in the round trip (its connection closed by the lane): the
            # others' runs go again under a new lead, as the lane's retry would send them.
            if len(waiters) > 1:
                batch.hub.loop.run_callback(self._hand_over, _Batch(batch.hub, commands[1:], waiters[1:]))
            raise
        if len(waiters) > 1:
            batch.hub.loop.run_callback(_wake, waiters[1:], answers[1:])
        return answers[0]


class _Batch:
    """The runs of one script that started in one loop iteration: sent together."""

    __slots__ = ("commands", "hub", "waiters")

    def __init__(self, hub: Any, commands: list[bytes], waiters: list[Waiter]) -> None:
        self.hub = hub
        self.commands = commands
        self.waiters = waiters


class _Failed:
    """The batch's round trip failed (Redis unreachable, timed out): each caller raises it."""

    __slots__ = ("error",)

    def __init__(self, error: Exception) -> None:
        self.error = error


def _wake(waiters: list[Waiter], answers: list[Any]) -> None:
    """In the hub: each caller resumed with its answer (one gone meanwhile keeps it unread)."""
    for waiter, answer in zip(waiters, answers, strict=True):
        waiter.switch(answer)


def _gevent_sockets() -> bool:
    return bool(monkey.is_module_patched("socket"))
