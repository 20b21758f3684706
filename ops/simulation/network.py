"""The simulated transport: handles whose ``method.remote(*args)`` is a message the
scheduler delivers, drops, duplicates or holds back, and the owner of every task.

A request is a ``Message`` in ``Network.inflight`` until the scheduler picks
it; delivering it starts the handler on the target's current incarnation (or,
if the target is down, answers ``Unreachable``); the handler's answer travels
back as a reply message, which can be held back or lost like any other. A lost
request or reply fails the caller's future with ``Unreachable``: ``Peers.call``
sends again, as it does when a Ray actor dies. A duplicate is a copy of an
already delivered request whose answer nobody reads.

Every task belongs to the incarnation whose code created it (a context
variable set when a handler starts, inherited by the tasks it creates); a
crash cancels them all, and an incarnation that has crashed sends nothing and
starts nothing more.

Timers are messages too: an actor's ``clock.sleep`` (``actors/clock.py``) puts
a ``timer`` in flight that the scheduler fires when it picks it, so a pause
lasts as long as the scheduler decides, in the seed's order (never lost or
copied; a crash cancels the sleeper and the timer then wakes nobody), but
never less than asked: firing it moves the simulated clock to its deadline if
the clock is behind (a loop that sleeps until the next second finds the next
second, as it would on a real clock).
Fire-and-forget calls (a shard handing a book to the liquidator) have nobody
reading their failure; ``send`` retrieves it so it is not reported as lost. A
caller that cancels the future ``send`` returned (the index publishing) gets
no reply message at all: its answer would only crowd what is in flight.
``on_answer`` sees every handler's answer as it
is produced, whether or not its reply then arrives (the auditor's tap).
"""
from __future__ import annotations

import asyncio
import contextvars
import inspect
import math

CURRENT = contextvars.ContextVar("simulated_actor", default=None)   # the Incarnation running, or None


class Unreachable(ConnectionError):
    """The simulated transport failed the call: the message or its answer was lost, or
    the peer is down."""


class Incarnation:
    """One life of an actor: the object, and the tasks its code started."""
    __slots__ = ("name", "actor", "tasks", "dead", "number")

    def __init__(self, name: str, actor, number: int):
        self.name = name
        self.actor = actor
        self.number = number
        self.tasks: dict = {}              # insertion-ordered (a set's order is by address)
        self.dead = False

    def kill(self) -> None:
        """Crash: cancel every task this life started; it never runs again."""
        self.dead = True
        for task in list(self.tasks):
            task.cancel()


class Message:
    __slots__ = ("number", "kind", "sender", "target", "method", "args", "future", "value", "error")

    def __init__(self, number: int, kind: str, sender: str, target: str, method: str, args: tuple,
                 future: asyncio.Future | None):
        self.number = number
        self.kind = kind                    # "request", "reply" or "timer"
        self.sender = sender
        self.target = target
        self.method = method
        self.args = args
        self.future = future                # the caller's (None: a duplicate, nobody reads the answer)
        self.value = None
        self.error: BaseException | None = None

    def describe(self) -> str:
        return f"{self.kind}#{self.number} {self.sender}->{self.target}.{self.method}"


def task_factory(loop, coro, context=None):
    """Create a task owned by the running incarnation (cancelled at once if it is dead)."""
    task = asyncio.Task(coro, loop=loop) if context is None else asyncio.Task(coro, loop=loop, context=context)
    owner = CURRENT.get() if context is None else context.get(CURRENT)
    if owner is not None:
        if owner.dead:
            task.cancel()
        else:
            owner.tasks[task] = None
            task.add_done_callback(lambda done: owner.tasks.pop(done, None))
    return task


class Handle:
    """What ``Peers`` gets from the resolver for an actor name."""

    def __init__(self, network: "Network", target: str):
        self._network = network
        self._target = target

    def __getattr__(self, method: str) -> "Method":
        if method.startswith("_"):
            raise AttributeError(method)
        return Method(self._network, self._target, method)


class Method:
    __slots__ = ("network", "target", "method")

    def __init__(self, network: "Network", target: str, method: str):
        self.network, self.target, self.method = network, target, method

    def remote(self, *args) -> asyncio.Future:
        return self.network.send(self.target, self.method, args)


class Network:
    """Messages in flight between simulated actors and clients. ``actors`` answers
    ``knows(name)`` and ``live(name)`` (the incarnation, or None while down); ``clock``
    (its ``ns``) is the simulated clock timers move."""

    def __init__(self, actors, observe=None, on_answer=None, clock=None):
        self.actors = actors
        self.clock = clock
        self.observe = observe              # called with every request sent (the auditor's tap)
        self.on_answer = on_answer          # called with (request, answer) when a handler returns
        self.inflight: list[Message] = []
        self.delivered: list[Message] = []  # recent requests, the ones a duplicate copies
        self.errors: list[str] = []         # handlers that raised: a bug in the code under test
        self.numbers = 0

    def resolve(self, name: str) -> Handle:
        """The resolver ``Peers`` uses: any known actor name, like ``ray.get_actor``."""
        if not self.actors.knows(name):
            raise ValueError(f"Failed to look up actor with name '{name}'")
        return Handle(self, name)

    def send(self, target: str, method: str, args: tuple, sender: str | None = None) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        owner = CURRENT.get()
        if owner is not None and owner.dead:       # a crashed process sends nothing
            return future
        self.numbers += 1
        message = Message(self.numbers, "request", sender or (owner.name if owner else "client"), target,
                          method, args, future)
        if self.observe is not None:
            self.observe(message)
        self.inflight.append(message)
        future.add_done_callback(_retrieve)
        return future

    async def sleep(self, seconds: float) -> None:
        """``clock.sleep`` in the simulator: wait until the scheduler fires this timer (then the
        clock is at least ``seconds`` later than now)."""
        future = asyncio.get_running_loop().create_future()
        owner = CURRENT.get()
        if owner is None or not owner.dead:
            self.numbers += 1
            name = owner.name if owner else "client"
            deadline = self.clock.ns + math.ceil(seconds * 1e9) if self.clock is not None else 0
            self.inflight.append(Message(self.numbers, "timer", name, name, f"sleep({seconds})", (deadline,), future))
        await future

    @property
    def losable(self) -> list[Message]:
        """What a fault may lose: requests and replies, never a timer."""
        return [m for m in self.inflight if m.kind != "timer"]

    def deliver(self, message: Message) -> None:
        """Hand ``message`` to its target now (a request) or to its caller (a reply)."""
        if message.kind == "timer":
            if self.clock is not None:
                self.clock.ns = max(self.clock.ns, message.args[0])
            if not message.future.done():
                message.future.set_result(None)
            return
        if message.kind == "reply":
            future = message.future
            if future is not None and not future.done():
                if message.error is not None:
                    future.set_exception(message.error)
                else:
                    future.set_result(message.value)
            return
        self.delivered.append(message)
        if len(self.delivered) > 64:
            del self.delivered[0]
        incarnation = self.actors.live(message.target)
        if incarnation is None:
            self._reply(message, error=Unreachable(f"{message.target} is down"))
            return
        context = contextvars.copy_context()
        context.run(CURRENT.set, incarnation)
        task = asyncio.get_running_loop().create_task(self._invoke(incarnation, message), context=context)
        task.add_done_callback(lambda done: self._answered(message, done))

    async def _invoke(self, incarnation: Incarnation, message: Message):
        answer = getattr(incarnation.actor, message.method)(*message.args)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    def _answered(self, message: Message, task: asyncio.Task) -> None:
        if task.cancelled():
            self._reply(message, error=Unreachable(f"{message.target} crashed during {message.method}"))
            return
        error = task.exception()
        if error is not None:
            self.errors.append(f"{message.describe()} raised {type(error).__name__}: {error}")
            self._reply(message, error=error)
        else:
            if self.on_answer is not None:
                self.on_answer(message, task.result())
            self._reply(message, value=task.result())

    def _reply(self, request: Message, value=None, error: BaseException | None = None) -> None:
        if request.future is None or request.future.done():
            return
        self.numbers += 1
        reply = Message(self.numbers, "reply", request.target, request.sender, request.method, (), request.future)
        reply.value, reply.error = value, error
        self.inflight.append(reply)

    def drop(self, message: Message) -> None:
        """Lose ``message``: its caller sees ``Unreachable``."""
        self.inflight.remove(message)
        if message.future is not None and not message.future.done():
            message.future.set_exception(Unreachable(f"{message.describe()} lost"))

    def duplicate(self, message: Message) -> Message:
        """A copy of a delivered request, put in flight again; its answer is discarded."""
        self.numbers += 1
        copy = Message(self.numbers, "request", message.sender, message.target, message.method, message.args, None)
        self.inflight.append(copy)
        return copy


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()
