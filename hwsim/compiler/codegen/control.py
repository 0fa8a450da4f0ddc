"""Control frames: blocks, loops, ifs and the function body; branches and the joins where paths meet.

Control flow joins meet in a canonical state: at every block, loop and if
entry the operand stack is spilled (constants may stay), and every branch
moves the values its label carries into the slots just above the label's
stack height.  A branch to the function frame is a return.

Code after an unconditional branch is unreachable: it is skipped (only block
nesting is tracked, in frames marked ``dead``) until the ``else`` or ``end``
that makes code reachable again::

    frame     label bound at          carries    entered with
    FUNC      the end (a return)      results    the parameters in their homes
    BLOCK     its end                 results    its params in their slots (try_table too)
    LOOP      its header              params     its params in their slots
    IF        its end; else_label     results    its params in slots, and in aux slots for the else arm
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..masm import Label
from .call import emit_return, push_results
from .context import CONST, SLOT, CodeGenContext


class CtrlKind(enum.Enum):
    FUNC = "func"
    BLOCK = "block"
    LOOP = "loop"
    IF = "if"


# (as module constants: an enum member looked up on its class costs a few attribute lookups, per frame and branch)
FUNC, BLOCK, LOOP, IF = CtrlKind.FUNC, CtrlKind.BLOCK, CtrlKind.LOOP, CtrlKind.IF


@dataclass(slots=True)
class ControlFrame:
    kind: CtrlKind
    label: Label  # branch target: the loop header, or the end
    height: int  # operand-stack height below the block's params
    params: tuple[int, ...]
    results: tuple[int, ...]
    else_label: Label | None = None
    param_save: int | None = None  # first aux slot holding an if's params, for the else branch
    reachable: bool = True  # is the code being generated now reachable
    entered_reachable: bool = True
    label_used: bool = False
    dead: bool = False  # the whole block sits in unreachable code
    handlers: HandlerRegion | None = None  # a try_table's: its code range and landing pads

    @property
    def arity(self) -> tuple[int, ...]:
        """The types a branch to this frame carries."""
        return self.params if self.kind is LOOP else self.results


@dataclass
class HandlerRegion:
    """A ``try_table`` with catch clauses: the code offsets ``[start, end)`` of its body and, per clause in
    order, ``(clause kind, tag index or -1, landing pad offset)`` (the runtime's unwinder reads these)."""

    start: int
    end: int
    clauses: list[tuple[int, int, int]]


class ControlStack:
    """The frames of the function being compiled, innermost last; ``frames[0]`` is the function body."""

    def __init__(self, ctx: CodeGenContext, results: tuple[int, ...]) -> None:
        self.ctx = ctx
        self.masm = ctx.masm
        self.frames = [ControlFrame(FUNC, self.masm.new_label(), 0, (), results)]

    @property
    def reachable(self) -> bool:
        return self.frames[-1].reachable

    def set_unreachable(self) -> None:
        """After an unconditional branch: drop the frame's operands; skip code until it is reachable again."""
        frame = self.frames[-1]
        self.ctx.truncate(frame.height)
        frame.reachable = False

    # -- entering blocks ------------------------------------------------------------------------------

    def block(self, params: tuple[int, ...], results: tuple[int, ...]) -> None:
        self.ctx.spill_all()
        height = len(self.ctx.stack) - len(params)
        self.frames.append(ControlFrame(BLOCK, self.masm.new_label(), height, params, results))

    def loop(self, params: tuple[int, ...], results: tuple[int, ...]) -> None:
        ctx = self.ctx
        ctx.spill_all()
        height = len(ctx.stack) - len(params)
        for depth in range(height, len(ctx.stack)):  # branches back to the header bring new params in their slots
            ctx.spill_value(depth)
        label = self.masm.new_label()
        self.masm.bind(label)
        self.frames.append(ControlFrame(LOOP, label, height, params, results))

    def try_table(
        self, params: tuple[int, ...], results: tuple[int, ...], clauses: list[tuple[int, int, int, tuple[int, ...]]]
    ) -> HandlerRegion | None:
        """A ``try_table``: a block whose catch clauses ``(kind, tag or -1, label depth, carried types)`` get a
        landing pad each, emitted here (jumped over) while the stack is the block's entry state.

        The runtime unwinds to a pad with fp, the pinned and the callee-saved registers restored, and the
        carried values (payload, then the exnref) where a call's results would be; the pad puts sp back,
        takes them as results and branches to the clause's label.  Operand values are all in slots or
        constants here (``spill_all``), so the pad's view of the stack holds wherever the body throws."""
        ctx, masm = self.ctx, self.masm
        ctx.spill_all()
        height = len(ctx.stack) - len(params)
        region = None
        if clauses:
            entry = list(ctx.stack)
            body = masm.new_label()
            masm.jump(body)
            pads = []
            for kind, tag, depth, carried in clauses:
                pad = masm.new_label()
                masm.bind(pad)
                pads.append((kind, tag, masm.offset()))
                masm.landing_pad()
                ctx.truncate(height)
                push_results(ctx, carried)
                self._branch_to(self.frames[-1 - depth])
                ctx.truncate(height)
                ctx.stack.extend(entry[height:])
            masm.bind(body)
            region = HandlerRegion(masm.offset(), 0, pads)
        frame = ControlFrame(BLOCK, masm.new_label(), height, params, results, handlers=region)
        self.frames.append(frame)
        return region

    def if_(self, params: tuple[int, ...], results: tuple[int, ...]) -> None:
        ctx, masm = self.ctx, self.masm
        cond = ctx.pop_comparison()
        ctx.spill_all()  # stores only: the popped condition's registers stay intact
        height = len(ctx.stack) - len(params)
        else_label = masm.new_label()
        frame = ControlFrame(IF, masm.new_label(), height, params, results, else_label=else_label)
        if params:
            frame.param_save = masm.alloc_aux_slots(len(params))
            for i, v in enumerate(ctx.stack[height:]):
                if v.kind is CONST:
                    masm.store_const_to_slot(masm.aux_offset(frame.param_save + i), v.ty, v.x)
                else:
                    masm.copy_slot(masm.aux_offset(frame.param_save + i), masm.slot_offset(v.x), v.ty)
        masm.branch_compare(cond.cond, cond.a, cond.b, else_label, False)
        ctx.release_comparison(cond)
        self.frames.append(frame)

    # -- leaving blocks -------------------------------------------------------------------------------

    def else_(self) -> None:
        frame = self.frames[-1]
        if frame.reachable:
            self._branch_to_end(frame)
        assert frame.else_label is not None  # validated: an else closes an if that has had no else yet
        self.masm.bind(frame.else_label)
        frame.else_label = None
        self._restore_if_params(frame)

    def end(self) -> None:
        frame = self.frames[-1]
        if frame.handlers is not None:
            frame.handlers.end = self.masm.offset()
        if frame.kind is FUNC:
            if frame.reachable:
                emit_return(self.ctx, frame.results)
            self.frames.pop()
            self.masm.bind(frame.label)
            return
        self.frames.pop()
        if frame.kind is IF and frame.else_label is not None:
            # No else arm: the params flow through unchanged when the condition is false.
            if frame.reachable:
                self._branch_to_end(frame)
            self.masm.bind(frame.else_label)
            self._restore_if_params(frame)
        if frame.reachable and frame.results:
            self.ctx.move_to_slots(self.ctx.top(len(frame.results)), frame.height)
        if frame.kind is LOOP:
            # A loop's label is its header: falling out of the end is the only way past it.
            outer_reachable = frame.reachable
        else:
            self.masm.bind(frame.label)
            outer_reachable = frame.reachable or frame.label_used
        self._push_block_results(frame)
        outer = self.frames[-1]
        outer.reachable = outer_reachable
        if not outer_reachable:
            self.set_unreachable()

    def _branch_to_end(self, frame: ControlFrame) -> None:
        self.ctx.move_to_slots(self.ctx.top(len(frame.results)), frame.height)
        frame.label_used = True
        self.masm.jump(frame.label)

    def _restore_if_params(self, frame: ControlFrame) -> None:
        """The else arm (written or implicit) starts from the if's entry state: its params, saved at the if."""
        ctx, masm = self.ctx, self.masm
        ctx.truncate(frame.height)
        for i, ty in enumerate(frame.params):
            assert frame.param_save is not None  # if_ saves the params of an if that has any
            masm.copy_slot(masm.slot_offset(frame.height + i), masm.aux_offset(frame.param_save + i), ty)
            ctx.push_slot(ty, frame.height + i)
        frame.reachable = frame.entered_reachable

    def _push_block_results(self, frame: ControlFrame) -> None:
        if len(self.ctx.stack) > frame.height:
            self.ctx.truncate(frame.height)
        for i, ty in enumerate(frame.results):
            self.ctx.push_slot(ty, frame.height + i)

    # -- branches ---------------------------------------------------------------------------------------

    def br(self, depth: int) -> None:
        self._branch_to(self.frames[-1 - depth])
        self.set_unreachable()

    def br_if(self, depth: int) -> None:
        ctx, masm = self.ctx, self.masm
        frame = self.frames[-1 - depth]
        cond = ctx.pop_comparison()
        frame.label_used = True
        # Code on the taken path only copies values: the context's view of the stack must stay
        # true for the fall-through path.
        if frame.kind is FUNC or self._needs_moves(frame):
            skip = masm.new_label()
            masm.branch_compare(cond.cond, cond.a, cond.b, skip, False)
            ctx.release_comparison(cond)
            self._branch_to(frame)
            masm.bind(skip)
        else:
            masm.branch_compare(cond.cond, cond.a, cond.b, frame.label, True)
            ctx.release_comparison(cond)

    def br_table(self, depths: tuple[int, ...], default: int) -> None:
        ctx, masm = self.ctx, self.masm
        index, owned = ctx.pop_reg()
        targets = []
        stubs = []
        for depth in (*depths, default):
            frame = self.frames[-1 - depth]
            frame.label_used = True
            if frame.kind is not FUNC and not self._needs_moves(frame):
                targets.append(frame.label)
            else:
                stub = masm.new_label()
                targets.append(stub)
                stubs.append((stub, frame))
        masm.jump_table(index, targets[:-1], targets[-1])
        ctx.release(index, owned)
        for stub, frame in stubs:
            masm.bind(stub)
            self._branch_to(frame)
        self.set_unreachable()

    def return_(self) -> None:
        self._branch_to(self.frames[0])
        self.set_unreachable()

    def _needs_moves(self, frame: ControlFrame) -> bool:
        """Do the values a branch to ``frame`` carries need moving into the frame's slots."""
        stack = self.ctx.stack
        n = len(frame.arity)
        if len(stack) - n != frame.height:
            return bool(n)
        height = frame.height
        for v in stack[height:]:
            if v.kind is not SLOT or v.x != height:
                return True
            height += 1
        return False

    def _branch_to(self, frame: ControlFrame) -> None:
        """Unconditional branch to ``frame``'s label, its values moved into place."""
        frame.label_used = True
        if frame.kind is FUNC:
            # Straight from the operand stack into the result registers: storing into the frame's slots
            # first would overwrite values emit_return still reads from those slots.
            emit_return(self.ctx, frame.results)
            return
        self.ctx.move_to_slots(self.ctx.top(len(frame.arity)), frame.height)
        self.masm.jump(frame.label)

    # -- unreachable code -----------------------------------------------------------------------------

    def skip_block(self, params: tuple[int, ...], results: tuple[int, ...]) -> None:
        """A block, loop or if in unreachable code: tracked for nesting only."""
        self.frames.append(
            ControlFrame(
                BLOCK,
                Label(),
                len(self.ctx.stack),
                params,
                results,
                reachable=False,
                entered_reachable=False,
                dead=True,
            )
        )

    def skip_else(self) -> None:
        if not self.frames[-1].dead:
            self.else_()

    def skip_end(self) -> None:
        if self.frames[-1].dead:
            self.frames.pop()
        else:
            self.end()
