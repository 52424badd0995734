"""A stateful (model-based) test of the exchange heap under domains, proxies and crashes.

A hypothesis state machine drives a real :class:`Kernel` with a small heap
(32 KiB, 24 object slots, so exhaustion happens) and a handful of ``Store``
domains. The top level (the ``init`` domain) allocates objects of several
types, frees them, fills and drains its own RRefArray/RRefDeque, and moves,
lends and gets back RRefs across proxies; domains pass RRefs on to each other,
crash (directly, or by an injected fault inside a call), terminate and are
created anew. Stale handles (freed or moved) and foreign handles (held by a
domain, used at the top level) must be refused without changing the heap.

The machine keeps a model of every object: who holds it (``init``, a domain,
or a container) and its value. After every step it checks the heap's own
invariants, that nothing is owned by a dead domain or orphaned in a dead
container, that the per-domain accounting is exactly what the model says each
domain holds, and that exactly the handle objects the model expects are live
(with the expected owner and value) and every other handle ever seen is stale.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from redleaf_nb import (Borrow, BorrowError, ContainerError, DomainCreateError, ForeignRRef,
                        HeapExhausted, Interface, Kernel, RpcError, RRef, RRefArray, RRefDeque,
                        StaleRRef, create, u8, u64)
from redleaf_nb.kernel import heap as hp

HEAP_BYTES = 32 << 10
MAX_OBJECTS = 24
QN = 4   # capacity of every RRefDeque here
AN = 3   # length of every RRefArray here
BLOB_SIZES = (100, 3000, 6000)
CONTAINED_NAME = "(in a container)"

U64 = RRef[u64]
QT = RRefDeque[u64, QN]
AT = RRefArray[u64, AN]


class Store(Interface):
    """Every way an RRef can cross a proxy: moved in, moved back, lent, relayed."""

    def stash(self, x: RRef[u64]) -> None: ...
    def stash_q(self, q: RRefDeque[u64, QN]) -> None: ...
    def stash_a(self, a: RRefArray[u64, AN]) -> None: ...
    def give(self, v: u64) -> RRef[u64]: ...
    def give_q(self) -> Optional[RRefDeque[u64, QN]]: ...
    def peek(self, x: Borrow[RRef[u64]]) -> u64: ...
    def push(self, x: RRef[u64]) -> bool: ...
    def pop(self) -> Optional[RRef[u64]]: ...
    def pass_on(self, peer: Store, x: RRef[u64]) -> bool: ...

    @create
    def make(self, v: u64) -> Store: ...


class StoreImpl(Store):
    """Keeps what it is given in ``kept`` (private state) and in its own deque ``q``."""

    def make(self, v):
        self.kept = []
        self.q = self.domain.heap.new(QT)
        self.kept.append(self.domain.heap.new(u64, v))

    def stash(self, x):
        self.kept.append(x)

    def stash_q(self, q):
        self.kept.append(q)

    def stash_a(self, a):
        self.kept.append(a)

    def give(self, v):
        for i in range(len(self.kept) - 1, -1, -1):
            if self.kept[i].type == U64:
                return self.kept.pop(i)
        return self.domain.heap.new(u64, v)

    def give_q(self):
        for i in range(len(self.kept) - 1, -1, -1):
            if self.kept[i].type == QT:
                return self.kept.pop(i)
        return None

    def peek(self, x):
        # a borrowed RRef is read-only for the borrower, and cannot be freed by it
        for attempt in (lambda: x.set(0), x.free):
            try:
                attempt()
            except BorrowError:
                pass
            else:
                raise AssertionError("a borrowed RRef was writable")
        assert x.owner != self.domain.name
        return x.get()

    def push(self, x):
        back = self.q.push_back(x)
        if back is not None:   # full: the deque hands the RRef back
            self.kept.append(back)
            return False
        return True

    def pop(self):
        return self.q.pop_front()

    def pass_on(self, peer, x):
        r = peer.stash(x)
        if isinstance(r, RpcError):
            if x.is_live:      # the peer was dead: x never left this domain
                self.kept.append(x)
            return False
        return True


# --- the model ---------------------------------------------------------------

@dataclass(eq=False)
class Obj:
    """One modelled heap object."""

    kind: str                 # "u64", "blob", "arr", "dq"
    nbytes: int
    value: int = 0            # u64: its value; blob: its fill byte
    children: list = field(default_factory=list)   # arr: AN x (Obj|None); dq: FIFO of Obj
    h: object = None          # the handle object, while init holds it
    given: int = 0            # how many times init gave it away (into a container...): an
    #                           item read in place stays stale once it left, even if it returns

    def contents(self):
        return [c for c in self.children if c is not None]


@dataclass(eq=False)
class Dom:
    name: str
    proxy: object
    impl: StoreImpl           # kept after death, to check its handles went stale
    alive: bool = True
    kept: list = field(default_factory=list)   # Obj, in the order of impl.kept
    q: Obj | None = None      # the domain's own deque
    faults: set = field(default_factory=set)   # injected, not yet fired (at most one)

    @property
    def id(self) -> int:
        return self.proxy.domain.id

    def kill(self):
        self.alive = False
        self.kept = []
        self.q = None


def snapshot(k):
    return [a.copy() for a in k.heap.h]


def unchanged(k, snap) -> bool:
    return all(np.array_equal(a, b) for a, b in zip(k.heap.h, snap))


def chunk(nbytes: int) -> int:
    c = hp.MIN_CHUNK
    while c < nbytes:
        c *= 2
    return c


def nbytes_of(kind: str, size: int = 0) -> int:
    return {"u64": 8, "blob": size, "arr": 8 * AN, "dq": 8 * (3 + QN)}[kind]


class HeapMachine(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.k = Kernel(heap_bytes=HEAP_BYTES, max_objects=MAX_OBJECTS)
        self.init: list[Obj] = []   # what the top level holds
        self.doms: list[Dom] = []
        self.seen: dict[int, object] = {}   # every handle object ever observed
        self.views: list = []   # (item read in place, its Obj, its .given, deque Obj, deque handle)
        self.counter = 1000
        self.ndoms = 0
        for _ in range(2):
            assert self._create()
        for kind in ("arr", "dq", "u64"):   # so that every rule is enabled from the start
            self.alloc(kind, BLOB_SIZES[0], 1)

    # -- helpers --
    def _value(self) -> int:
        self.counter += 1
        return self.counter

    def _see(self, h):
        self.seen[id(h)] = h

    def _observe(self):
        for d in self.doms:
            for h in d.impl.kept:
                self._see(h)
            if getattr(d.impl, "q", None) is not None:
                self._see(d.impl.q)

    def _hold(self, o: Obj, h):
        o.h = h
        self._see(h)
        self.init.append(o)

    def _drop(self, o: Obj):
        self.init.remove(o)
        o.h = None
        o.given += 1

    def _create(self) -> bool:
        name, v = f"s{self.ndoms}", self._value()
        self.ndoms += 1
        try:
            p = self.k.create(name, StoreImpl, v=v)
        except DomainCreateError as e:
            assert isinstance(e.__cause__, RpcError) and isinstance(e.__cause__.cause,
                                                                    HeapExhausted), e
            event("create: heap exhausted")
            return False
        d = Dom(name, p, p.domain.impl, kept=[Obj("u64", 8, v)], q=Obj("dq", nbytes_of("dq")))
        self.doms.append(d)
        self._observe()
        return True

    def _pick(self, data) -> Dom:
        """A domain, mostly a live one (calls into dead ones are cheap to cover)."""
        alive = [d for d in self.doms if d.alive]
        if alive and data.draw(st.integers(0, 4), label="pick a live domain") > 0:
            return data.draw(st.sampled_from(alive))
        return data.draw(st.sampled_from(self.doms))

    def _objs(self, *kinds):
        return [o for o in self.init if o.kind in kinds]

    def _expect_refused(self, r, d: Dom):
        assert isinstance(r, RpcError), r
        assert not d.alive

    def _call(self, d: Dom, method: str, *args):
        """Call a domain; returns (result, fault fired)."""
        self._observe()
        fires = d.alive and method in d.faults
        r = getattr(d.proxy, method)(*args)
        if fires:
            assert isinstance(r, RpcError) and not d.proxy.domain.alive, r
            d.kill()
            event(f"injected crash in {method}")
        elif not d.alive:
            self._expect_refused(r, d)
        return r, fires

    # -- allocation and freeing at the top level --
    @rule(kind=st.sampled_from(["u64", "blob", "blob", "arr", "dq"]),
          size=st.sampled_from(BLOB_SIZES), fill=st.integers(1, 255))
    def alloc(self, kind, size, fill):
        t = {"u64": u64, "blob": u8[size], "arr": AT, "dq": QT}[kind]
        nbytes = nbytes_of(kind, size)
        value = self._value() if kind == "u64" else fill if kind == "blob" else 0
        snap = snapshot(self.k)
        try:
            h = self.k.new(t, value if kind == "u64" else None)
        except HeapExhausted:
            event("alloc: heap exhausted")
            assert unchanged(self.k, snap), "a refused allocation changed the heap"
            assert (self.k.heap.live_objects == MAX_OBJECTS
                    or self.k.heap.arena_used + chunk(nbytes) > self.k.heap.capacity)
            return
        if kind == "blob":
            h.set(np.full(size, fill, np.uint8))
        assert h.owner == "init"
        self._hold(Obj(kind, nbytes, value, [None] * AN if kind == "arr" else []), h)

    @rule(n=st.integers(1, 4))
    def alloc_u64(self, n):
        """The commonest object, in batches, so that there is much to move and store."""
        for _ in range(n):
            self.alloc("u64", BLOB_SIZES[0], 1)

    @precondition(lambda self: self.init)
    @rule(data=st.data())
    def free(self, data):
        o = data.draw(st.sampled_from(self.init))
        if o.contents():
            event("free a non-empty container")
        h = o.h
        o.h.free()
        self._drop(o)
        assert not h.is_live

    # -- containers at the top level --
    @precondition(lambda self: self._objs("arr") and self._objs("u64"))
    @rule(data=st.data(), i=st.integers(0, AN - 1))
    def array_put(self, data, i):
        a = data.draw(st.sampled_from(self._objs("arr")))
        x = data.draw(st.sampled_from(self._objs("u64")))
        old = a.h.put(i, x.h)
        prev = a.children[i]
        self._drop(x)
        a.children[i] = x
        if prev is None:
            assert old is None
        else:
            self._hold(prev, old)

    @precondition(lambda self: self._objs("arr"))
    @rule(data=st.data(), i=st.integers(0, AN - 1))
    def array_take(self, data, i):
        a = data.draw(st.sampled_from(self._objs("arr")))
        r = a.h.take(i)
        prev, a.children[i] = a.children[i], None
        if prev is None:
            assert r is None
        else:
            self._hold(prev, r)

    @precondition(lambda self: self._objs("dq") and self._objs("u64"))
    @rule(data=st.data(), n=st.integers(1, QN))
    def deque_push(self, data, n):
        q = data.draw(st.sampled_from(self._objs("dq")))
        for _ in range(n):
            if not self._objs("u64"):
                break
            x = data.draw(st.sampled_from(self._objs("u64")))
            h = x.h
            r = q.h.push_back(h)
            if len(q.children) == QN:
                event("push into a full deque")
                assert r is h and h.is_live
            else:
                assert r is None and not h.is_live
                self._drop(x)
                q.children.append(x)

    @precondition(lambda self: self._objs("dq"))
    @rule(data=st.data())
    def deque_pop(self, data):
        q = data.draw(st.sampled_from(self._objs("dq")))
        r = q.h.pop_front()
        event(f"pop from a deque of {min(len(q.children), 2)}+ at init")
        if q.children:
            self._hold(q.children.pop(0), r)
        else:
            assert r is None

    @precondition(lambda self: self._objs("dq"))
    @rule(data=st.data(), i=st.integers(-QN - 1, QN))
    def deque_read(self, data, i):
        """Iteration, peek and indexing read a deque's items in place: as the model
        says, oldest first, and without changing anything."""
        q = data.draw(st.sampled_from(self._objs("dq")))
        snap = snapshot(self.k)
        items = list(q.h)
        assert [int(x.get()) for x in items] == [c.value for c in q.children]
        first = q.h.peek()
        assert first is None if not q.children else int(first.get()) == q.children[0].value
        try:
            item = q.h[i]
        except IndexError:
            assert not -len(q.children) <= i < len(q.children)
        else:
            assert int(item.get()) == q.children[i].value
            o = q.children[i]
            self.views = self.views[-7:] + [(item, o, o.given, q, q.h)]
        assert unchanged(self.k, snap), "reading a deque's items changed the heap"

    @precondition(lambda self: self._objs("arr", "dq"))
    @rule(data=st.data(), bad_index=st.sampled_from([-1, AN, 99]))
    def bad_container_op(self, data, bad_index):
        c = data.draw(st.sampled_from(self._objs("arr", "dq")))
        snap = snapshot(self.k)
        if c.kind == "arr":
            x = data.draw(st.sampled_from(self._objs("u64", "blob") or [None]))
            if x is None or x.kind == "u64":
                # an index out of range is refused whatever the child
                try:
                    c.h.put(bad_index, x.h) if x else c.h.take(bad_index)
                except ContainerError:
                    pass
                else:
                    raise AssertionError("an out-of-range index was accepted")
            else:
                try:
                    c.h.put(0, x.h)   # an RRef of the wrong type
                except ContainerError:
                    pass
                else:
                    raise AssertionError("an RRefArray took a child of the wrong type")
                assert x.h.is_live and x.h.owner == "init"
        else:
            blobs = self._objs("blob")
            if not blobs:
                return
            x = data.draw(st.sampled_from(blobs))
            try:
                c.h.push_back(x.h)
            except ContainerError:
                pass  # refused whether or not the deque is full
            else:
                raise AssertionError("an RRefDeque took (or handed back) a child of the wrong type")
        assert unchanged(self.k, snap), "a refused container operation changed the heap"

    # -- across proxies --
    @precondition(lambda self: self._objs("u64", "dq", "arr"))
    @rule(data=st.data())
    def stash(self, data):
        d = self._pick(data)
        o = data.draw(st.sampled_from(self._objs("u64", "dq", "arr")))
        method = {"u64": "stash", "dq": "stash_q", "arr": "stash_a"}[o.kind]
        h = o.h
        was_alive = d.alive
        r, fired = self._call(d, method, h)
        if not was_alive:
            assert h.is_live   # a dead callee is never entered: nothing moved
            return
        assert not h.is_live
        self._drop(o)
        if not fired:
            assert r is None
            d.kept.append(o)

    @rule(data=st.data())
    def give(self, data):
        d = self._pick(data)
        v = self._value()
        r, fired = self._call(d, "give", v)
        if not d.alive or fired:
            return
        i = max((j for j, o in enumerate(d.kept) if o.kind == "u64"), default=None)
        if i is None:
            if isinstance(r, RpcError):   # the domain had to allocate and could not
                assert isinstance(r.cause, HeapExhausted), r
                assert not d.proxy.domain.alive
                event("give: heap exhausted in the domain")
                d.kill()
                return
            o = Obj("u64", 8, v)
        else:
            o = d.kept.pop(i)
        assert not isinstance(r, RpcError), r
        self._hold(o, r)
        assert r.get() == o.value

    @rule(data=st.data())
    def give_q(self, data):
        d = self._pick(data)
        r, fired = self._call(d, "give_q")
        if not d.alive or fired:
            return
        i = max((j for j, o in enumerate(d.kept) if o.kind == "dq"), default=None)
        if i is None:
            assert r is None
        else:
            self._hold(d.kept.pop(i), r)
            event("got a deque back")

    @precondition(lambda self: self._objs("u64"))
    @rule(data=st.data())
    def peek(self, data):
        d = self._pick(data)
        o = data.draw(st.sampled_from(self._objs("u64")))
        r, fired = self._call(d, "peek", o.h)
        # lent, never moved: still init's, whatever happened to the borrower
        assert o.h.is_live and o.h.owner == "init"
        if d.alive and not fired:
            assert not isinstance(r, RpcError), r
            assert int(r) == o.value

    @precondition(lambda self: self._objs("u64"))
    @rule(data=st.data(), n=st.integers(1, QN))
    def push(self, data, n):
        d = self._pick(data)
        for _ in range(n):
            if not self._objs("u64"):
                break
            o = data.draw(st.sampled_from(self._objs("u64")))
            h = o.h
            was_alive = d.alive
            r, fired = self._call(d, "push", h)
            if not was_alive:
                assert h.is_live
                return
            self._drop(o)
            if fired:
                return
            if len(d.q.children) < QN:
                assert bool(r) is True
                d.q.children.append(o)
            else:
                event("push into a full deque in a domain")
                assert bool(r) is False
                d.kept.append(o)

    @rule(data=st.data())
    def pop(self, data):
        d = self._pick(data)
        r, fired = self._call(d, "pop")
        if not d.alive or fired:
            return
        event(f"pop from a deque of {min(len(d.q.children), 2)}+ in a domain")
        if d.q.children:
            self._hold(d.q.children.pop(0), r)
        else:
            assert r is None

    @precondition(lambda self: self._objs("u64"))
    @rule(data=st.data())
    def pass_on(self, data):
        src = self._pick(data)
        dst = self._pick(data)
        o = data.draw(st.sampled_from(self._objs("u64")))
        h = o.h
        was_alive = src.alive
        r, fired = self._call(src, "pass_on", dst.proxy, h)
        if not was_alive:
            assert h.is_live
            return
        self._drop(o)
        if fired:
            return
        if not dst.alive:
            # (also when src is dst: it never died here)
            assert bool(r) is False
            src.kept.append(o)
        elif "stash" in dst.faults:
            dst.kill()
            event("injected crash in a nested call")
            if dst is src:   # the panic unwinds through both calls
                assert isinstance(r, RpcError), r
            else:
                assert bool(r) is False
        else:
            assert bool(r) is True
            dst.kept.append(o)

    # -- domain lifecycle --
    @rule(data=st.data(),
          method=st.sampled_from(["stash", "give", "peek", "push", "pop", "pass_on"]))
    def inject_crash(self, data, method):
        d = self._pick(data)
        self.k.inject_crash(d.name, on_call=method)
        if d.alive:
            d.faults = {method}     # one fault is armed in a domain at a time: it replaces

    @rule(data=st.data(), how=st.sampled_from(["crash", "crash by proxy", "terminate"]))
    def kill(self, data, how):
        """Crash or terminate a domain from outside (idempotent on a dead one)."""
        d = self._pick(data)
        self._observe()
        before = d.proxy.domain.state
        if how == "terminate":
            self.k.terminate(d.name)
        else:
            self.k.crash(d.proxy if how == "crash by proxy" else d.name)
        want = {"crash": "crashed", "crash by proxy": "crashed", "terminate": "terminated"}[how]
        assert d.proxy.domain.state == (want if d.alive else before)
        d.kill()

    @precondition(lambda self: self.ndoms < 8 and sum(d.alive for d in self.doms) < 4)
    @rule()
    def create_domain(self):
        self._create()

    # -- handles that must be refused --
    def _expected_live(self) -> dict[int, object]:
        live = {id(o.h): o.h for o in self.init}
        for d in self.doms:
            if d.alive:
                live.update((id(h), h) for h in d.impl.kept)
                live[id(d.impl.q)] = d.impl.q
        return live

    def _refused(self, h, err, data):
        """Every use of ``h`` at the top level raises ``err`` and changes nothing."""
        k, snap = self.k, snapshot(self.k)
        ops = [h.free]
        if isinstance(h, RRef):
            ops.append(h.get)
            if h.type == U64:
                ops.append(lambda: h.set(7))
                alive = [d for d in self.doms if d.alive]
                if alive:
                    d = data.draw(st.sampled_from(alive))
                    ops += [lambda: d.proxy.stash(h), lambda: d.proxy.peek(h),
                            lambda: d.proxy.pass_on(d.proxy, h)]
            arrs = self._objs("arr")
            if arrs:
                a = data.draw(st.sampled_from(arrs))
                ops.append(lambda: a.h.put(0, h))
        elif isinstance(h, RRefDeque):
            ops += [lambda: len(h), h.pop_front]
        else:
            ops += [lambda: h.take(0), lambda: h.has(0)]
        for op in ops:
            try:
                r = op()
            except err:
                pass
            else:
                raise AssertionError(f"{h!r} was not refused with {err.__name__}: got {r!r}")
        assert unchanged(k, snap), f"a refused use of {h!r} changed the heap"

    @rule(data=st.data())
    def use_stale(self, data):
        self._observe()
        live = self._expected_live()
        stale = [h for i, h in self.seen.items() if i not in live]
        if not stale:
            return
        h = data.draw(st.sampled_from(stale))
        event(f"stale {type(h).__name__}")
        self._refused(h, StaleRRef, data)

    @rule(data=st.data())
    def use_foreign(self, data):
        held = [(d, h) for d in self.doms if d.alive for h in d.impl.kept + [d.impl.q]]
        if not held:
            return
        d, h = data.draw(st.sampled_from(held))
        assert h.owner == d.name
        event(f"foreign {type(h).__name__}")
        self._refused(h, ForeignRRef, data)

    # -- invariants --
    @invariant()
    def heap_is_consistent(self):
        self.k.heap.check_invariants()

    @invariant()
    def owners_are_live(self):
        k = self.k
        doms = k.domains()
        alive = set(doms.id[doms.state == "alive"].tolist())
        dead = doms[doms.state != "alive"]
        assert (dead.objects == 0).all() and (dead.bytes == 0).all(), \
            f"a dead domain owns objects:\n{dead}"
        objs = k.heap.objects()
        owner_of = dict(zip(objs.slot.tolist(), objs.owner.tolist()))
        for slot, owner, parent in zip(objs.slot, objs.owner, objs.parent):
            if owner == hp.CONTAINED:
                assert parent in owner_of, f"slot {slot} is in a dead container"
                assert owner_of[parent] in alive, f"slot {slot}'s container is not owned live"
            else:
                assert owner in alive, f"slot {slot} is owned by dead domain {owner}"
                assert parent == -1
        acct = k.heap.accounting()
        assert acct.objects.sum() == k.heap.live_objects == len(objs)
        assert acct.bytes.sum() == k.heap.live_bytes

    @invariant()
    def accounting_matches_model(self):
        want = Counter()
        wbytes = Counter()

        def add(holder, o):
            want[holder] += 1
            wbytes[holder] += o.nbytes
            for c in o.contents():
                want[CONTAINED_NAME] += 1
                wbytes[CONTAINED_NAME] += c.nbytes

        for o in self.init:
            add("init", o)
        for d in self.doms:
            if d.alive:
                for o in d.kept + [d.q]:
                    add(d.name, o)
        acct = self.k.heap.accounting()
        got = {r.domain: (r.objects, r.bytes) for r in acct.itertuples()}
        assert got == {n: (want[n], wbytes[n]) for n in want}, (got, dict(want), dict(wbytes))
        assert self.k.heap.live_objects == sum(want.values())

    @invariant()
    def items_read_in_place_go_stale_when_they_leave(self):
        for item, o, given, q, qh in self.views:
            # still in the deque it was read in, not taken out and pushed back since
            held = q.h is qh and any(c is o for c in q.children) and o.given == given
            assert item.is_live == held, (item, held)
            if held:
                assert int(item.get()) == o.value
            else:
                event("an item read in place has left its deque")
                try:
                    item.get()
                except (StaleRRef, ForeignRRef):
                    pass
                else:
                    raise AssertionError(f"{item!r} was readable after it left its deque")

    @invariant()
    def handles_match_model(self):
        k = self.k
        for o in self.init:
            h = o.h
            assert h.is_live and h.owner == "init", h
            if o.kind == "u64":
                assert h.get() == o.value
            elif o.kind == "blob":
                assert h[0] == o.value and h[o.nbytes - 1] == o.value
            elif o.kind == "dq":
                assert len(h) == len(o.children)
            else:
                assert [h.has(i) for i in range(AN)] == [c is not None for c in o.children]
        for d in self.doms:
            assert d.proxy.domain.alive == d.alive
            if not d.alive:
                continue
            kept = d.impl.kept
            assert len(kept) == len(d.kept)
            for h, o in zip(kept + [d.impl.q], d.kept + [d.q]):
                assert h.is_live and h.owner == d.name, h
                assert h.type == {"u64": U64, "dq": QT, "arr": AT}[o.kind]
                if o.kind == "u64":
                    assert k.heap.view(h.handle, d.id)[()] == o.value
                elif o.kind == "dq":
                    assert hp.deque_len(k.heap.k, h.handle, d.id) == len(o.children)
        self._observe()
        live = self._expected_live()
        for i, h in self.seen.items():
            if i not in live:
                assert not h.is_live, f"{h!r} should be stale"


HeapMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None,
                                         suppress_health_check=[HealthCheck.too_slow])
TestHeap = HeapMachine.TestCase
