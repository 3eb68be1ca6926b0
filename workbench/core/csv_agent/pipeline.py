"""The CSV stages as rounds of engine calls: generate, answer with hint, best-of-n, verify.

Each conversation turn is one engine work item, keyed ``stage/conversation/sample/turn``.
A stage runs as ``max_turns`` rounds (``stage#1``, ``stage#2``, ...): each round asks
every unfinished conversation for its next turn; after the round the tool calls of
the new turns run in the tool worker and are stored in ``tool_calls``, so the next
round rebuilds each conversation from the store alone.  A killed run resumes at
the next unfinished turn (finished turns are done items, or cache hits), and tool
calls already stored are never run again.

A teacher's finished conversation is parsed and its questions validated (stored
as ``csv_question`` samples, accepted ones ``done``); answering conversations are
verified when they finish (``csv_verify`` samples).  Both are re-runnable from
the store without a model call (``validate_generated`` / ``verify_conversations``).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypedDict

from workbench.core.csv_agent import prompts, questions, render, tools, verify
from workbench.core.csv_agent.render import DEFAULT_MAX_CHARS, DEFAULT_MAX_ROWS, error_result
from workbench.core.csv_agent.tables import TableRecord, get_table
from workbench.core.csv_agent.worker import (
    TableSource,
    ToolCache,
    ToolOutcome,
    ToolSession,
    WorkerLimits,
    WorkerPool,
    record_tool_call,
)
from workbench.core.engine import WorkItem, item_key
from workbench.core.errors import ConfigError
from workbench.core.providers import Message, ModelRequest, ToolCall, ToolSpec, split_model_ref
from workbench.core.status import RunStatus, SampleStatus
from workbench.core.store import Store, dumps, loads, now_iso

GENERATE = "csv_generate"
ANSWER_HINT = "csv_answer_hint"
BEST_OF_N = "csv_best_of_n"
QUESTION = "csv_question"
VERIFY = "csv_verify"
CONVERSATION_STAGES = (GENERATE, ANSWER_HINT, BEST_OF_N)
ROUND_SEPARATOR = "#"


def tool_specs() -> tuple[ToolSpec, ...]:
    """Every tool as a provider-neutral ``ToolSpec`` (each adapter sends its own wire shape)."""
    return tuple(
        ToolSpec(s["name"], s["description"], s["parameters"]) for s in tools.TOOL_SCHEMAS.values()
    )


TOOL_SPECS = tool_specs()


@dataclass(frozen=True)
class PipelineOptions:
    """What a CSV run does (the experiment config, without pydantic)."""

    tables: tuple[str, ...]
    teacher: str
    answerer: str
    student: str
    stages: tuple[str, ...] = CONVERSATION_STAGES
    questions_per_table: int = 5
    explore_turns: int = 8
    generate_samples: int = 1
    hint_samples: int = 1
    samples: int = 8
    teacher_temperature: float = 0.7
    temperature: float = 0.7
    max_turns: int = 12
    tool_error_limit: int = 5
    max_rows: int = DEFAULT_MAX_ROWS
    max_chars: int = DEFAULT_MAX_CHARS
    max_tokens: int = 2048
    seed: int = 0
    check_fragile: bool = True
    max_retries: int = 1  # rejected questions go back to the teacher this many times
    min_overlap: float = 0.5
    max_table_workers: int = 4
    questions_run: int | None = None  # answer another run's questions (e.g. a DABench import)
    worker: WorkerLimits = field(default_factory=WorkerLimits)


class TurnPayload(TypedDict, total=False):
    """Stored on each turn's sample."""

    conversation: str  # the conversation key (question id, or table sha256 prefix)
    turn: int
    table_sha256: str
    question_id: str


class VerifyPayload(TypedDict, total=False):
    """One finished answering conversation, verified."""

    stage: str
    question_id: str
    sample: int
    table_sha256: str
    stop_reason: str
    turns: int
    tool_calls: int
    tool_errors: int
    input_tokens: int
    output_tokens: int
    subs: list[dict[str, Any]]
    score: float
    correct: bool
    keep: bool
    reasons: list[str]
    tags: list[str]
    overlap: dict[str, float]
    final_sample_id: int


# -- conversations from the store ------------------------------------------------------------


@dataclass(frozen=True)
class StoredToolResult:
    call_id: str
    tool: str
    args: Any
    shown: str
    error_kind: str | None


@dataclass(frozen=True)
class Turn:
    sample_id: int
    turn: int
    status: str
    text: str
    tool_calls: tuple[ToolCall, ...]
    input_tokens: int
    output_tokens: int
    results: dict[str, StoredToolResult] = field(default_factory=dict)

    @property
    def tools_done(self) -> bool:
        return all(tc.id in self.results for tc in self.tool_calls)


@dataclass(frozen=True)
class Conversation:
    stage: str
    key: str  # question id, or the table's sha256 prefix for generation
    sample: int
    turns: tuple[Turn, ...]  # done turns, in order
    feedback: dict[int, str] = field(default_factory=dict)  # turn sample id -> rejections

    @property
    def conv_id(self) -> str:
        return f"{self.stage}/{self.key}/{self.sample}"

    def errors_in_a_row(self) -> int:
        streak = 0
        for turn in self.turns:
            for tc in turn.tool_calls:
                result = turn.results.get(tc.id)
                if result is None:
                    continue
                streak = streak + 1 if result.error_kind else 0
        return streak

    def stop_reason(
        self, *, max_turns: int, tool_error_limit: int, max_retries: int = 0
    ) -> str | None:
        """Why it is over, or None while it goes on (tool calls not yet run count as going on).

        A teacher whose questions were rejected gets the reasons back and another turn,
        ``max_retries`` times.
        """
        if not self.turns:
            return None
        last = self.turns[-1]
        if not last.tool_calls:
            retry = last.sample_id in self.feedback and len(self.feedback) <= max_retries
            return None if retry and len(self.turns) < max_turns else "answered"
        if not last.tools_done:
            return None
        if self.errors_in_a_row() >= tool_error_limit:
            return "tool_error_limit"
        if len(self.turns) >= max_turns:
            return "max_turns"
        return None

    def messages(self, user: str) -> tuple[Message, ...]:
        out = [Message("user", user)]
        for turn in self.turns:
            out.append(Message("assistant", turn.text, tool_calls=turn.tool_calls))
            for tc in turn.tool_calls:
                result = turn.results.get(tc.id)
                out.append(Message("tool", result.shown if result else "", tool_call_id=tc.id))
            if turn.sample_id in self.feedback:
                out.append(Message("user", self.feedback[turn.sample_id]))
        return tuple(out)

    @property
    def final_text(self) -> str:
        return self.turns[-1].text if self.turns else ""

    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        for turn in self.turns:
            for tc in turn.tool_calls:
                result = turn.results.get(tc.id)
                if result is not None and result.error_kind is None:
                    out.append((tc.name, dict(tc.arguments)))
        return out


def load_conversations(
    store: Store, run_id: int, stage: str, *, key: str | None = None, sample: int | None = None
) -> dict[tuple[str, int], Conversation]:
    """Every conversation of a stage in a run (or the one ``key``/``sample`` names)."""
    where = "s.run_id = ? AND s.stage = ?"
    params: list[Any] = [run_id, stage]
    if key is not None and sample is not None:  # one conversation, through the unique key index
        prefix = f"{stage}/{key}/{sample}/"
        where = "s.run_id = ? AND s.item_key >= ? AND s.item_key < ?"
        params = [run_id, prefix, prefix + "\uffff"]
    rows = store.query(
        "SELECT s.id, s.item_key, s.status, s.output, s.payload, c.response,"
        " COALESCE(c.input_tokens, 0) AS input_tokens,"
        " COALESCE(c.output_tokens, 0) AS output_tokens"
        f" FROM samples s LEFT JOIN calls c ON c.id = s.call_id WHERE {where} ORDER BY s.id",
        params,
    )
    results: dict[int, dict[str, StoredToolResult]] = defaultdict(dict)
    for r in store.query(
        "SELECT t.sample_id, t.call_id, t.tool, t.args, t.shown, t.error_kind"
        f" FROM tool_calls t JOIN samples s ON s.id = t.sample_id WHERE {where} ORDER BY t.id",
        params,
    ):
        results[int(r["sample_id"])][str(r["call_id"])] = StoredToolResult(
            str(r["call_id"]),
            str(r["tool"]),
            loads(r["args"]),
            str(r["shown"]),
            r["error_kind"],
        )
    turns: dict[tuple[str, int], list[Turn]] = defaultdict(list)
    for r in rows:
        if r["status"] != SampleStatus.DONE:
            continue
        payload = loads(r["payload"], {})
        conv_key = (str(payload.get("conversation")), int(r["item_key"].split("/")[-2]))
        response = loads(r["response"], {}) or {}
        completion = (response.get("completions") or [{}])[0]
        calls = tuple(ToolCall(**tc) for tc in completion.get("tool_calls", ()))
        turns[conv_key].append(
            Turn(
                sample_id=int(r["id"]),
                turn=int(payload.get("turn", 0)),
                status=str(r["status"]),
                text=str(completion.get("text", r["output"] or "")),
                tool_calls=calls,
                input_tokens=int(r["input_tokens"]),
                output_tokens=int(r["output_tokens"]),
                results=results.get(int(r["id"]), {}),
            )
        )
    feedback = _feedback(store, run_id) if stage == GENERATE else {}
    out = {}
    for conv_key, ts in turns.items():
        ordered = tuple(sorted(ts, key=lambda t: t.turn))
        mine = {t.sample_id: feedback[t.sample_id] for t in ordered if t.sample_id in feedback}
        out[conv_key] = Conversation(stage, conv_key[0], conv_key[1], ordered, mine)
    return out


def _feedback(store: Store, run_id: int) -> dict[int, str]:
    """For each teacher answer with rejected questions: the reasons, as the next user turn."""
    reasons: dict[int, list[str]] = defaultdict(list)
    for r in store.query(
        "SELECT parent_id, output, payload FROM samples WHERE run_id = ? AND stage = ?"
        " AND status = ? AND parent_id IS NOT NULL ORDER BY id",
        (run_id, QUESTION, SampleStatus.INVALID),
    ):
        payload = loads(r["payload"], {})
        question = (payload.get("question") or {}).get("question") or str(r["output"] or "")[:80]
        reasons[int(r["parent_id"])].append(f"- {question[:120]!r}: {payload.get('reason')}")
    return {
        parent: "Some questions were rejected:\n"
        + "\n".join(lines)
        + "\nFix them and reply with the corrected questions only, as one JSON array in a "
        "```json block."
        for parent, lines in reasons.items()
    }


# -- the pipeline ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One conversation to hold: its stage, key, sample, model, prompt and table."""

    stage: str
    key: str
    sample: int
    model_ref: str
    system: str
    user: str
    table: TableRecord
    temperature: float
    question_id: str | None = None


class Pipeline:
    """Items, tool execution, validation and verification for the CSV stages."""

    def __init__(self, options: PipelineOptions) -> None:
        self.o = options
        self._pool: WorkerPool | None = None
        self._sessions: dict[str, ToolSession] = {}
        self._cache: ToolCache | None = None

    # -- rounds --------------------------------------------------------------------------------

    def rounds(self) -> list[str]:
        out = []
        for stage in self.o.stages:
            n = self.max_turns(stage)
            out += [f"{stage}{ROUND_SEPARATOR}{i}" for i in range(1, n + 1)]
        return out

    @staticmethod
    def base_stage(round_name: str) -> str:
        return round_name.split(ROUND_SEPARATOR, 1)[0]

    def max_turns(self, stage: str) -> int:
        if stage == GENERATE:
            return self.o.explore_turns + 1 + self.o.max_retries
        return self.o.max_turns

    def check_models(self, provider_kinds: dict[str, str]) -> None:
        """A model whose provider cannot call tools is a ``ConfigError`` before any spend."""
        for ref in dict.fromkeys((self.o.teacher, self.o.answerer, self.o.student)):
            provider, _ = split_model_ref(ref)
            kind = provider_kinds.get(provider, provider)
            if kind == "local":
                raise ConfigError(
                    f"{ref}: the local model cannot call tools; the CSV stages need a provider "
                    "with native tool calling (openai, anthropic, cohere, openai-compatible)"
                )

    # -- targets -------------------------------------------------------------------------------

    def tables(self, store: Store) -> list[TableRecord]:
        out = []
        for ref in self.o.tables:
            table = get_table(store, ref)
            if table is None:
                raise ConfigError(
                    f"tables: no stored table {ref!r} (workbench import --table PATH)"
                )
            out.append(table)
        return out

    def targets(self, store: Store, run_id: int, stage: str) -> list[Target]:
        if stage == GENERATE:
            system = prompts.TEACHER_SYSTEM.format(
                explore_turns=self.o.explore_turns, k=self.o.questions_per_table
            )
            return [
                Target(
                    GENERATE,
                    t.sha256[:16],
                    i,
                    self.o.teacher,
                    system,
                    prompts.teacher_user(t, self.o.questions_per_table),
                    t,
                    self.o.teacher_temperature,
                )
                for t in self.tables(store)
                for i in range(self.o.generate_samples)
            ]
        hint = stage == ANSWER_HINT
        model = self.o.answerer if hint else self.o.student
        n = self.o.hint_samples if hint else self.o.samples
        out = []
        for q in accepted_questions(store, self.o.questions_run or run_id):
            table = get_table(store, str(q["table_sha256"]))
            if table is None:
                continue
            question = questions.GeneratedQuestion.model_validate(q["question"])
            user = prompts.answer_user(
                table,
                question.question,
                question.constraints,
                question.format_text(),
                question.hint if hint else None,
            )
            for i in range(n):
                out.append(
                    Target(
                        stage,
                        str(q["question_id"]),
                        i,
                        model,
                        prompts.ANSWER_SYSTEM,
                        user,
                        table,
                        self.o.temperature,
                        question_id=str(q["question_id"]),
                    )
                )
        return out

    def items(self, store: Store, run_id: int, stage: str) -> Iterator[WorkItem]:
        """The next turn of every unfinished conversation of ``stage``."""
        targets = self.targets(store, run_id, stage)
        conversations = self.run_pending_tools(store, run_id, stage, targets)
        if stage == GENERATE:
            self.validate_generated(store, run_id)  # a resumed run: feedback before the next turn
            conversations = None
        if conversations is None:
            conversations = load_conversations(store, run_id, stage)
        limit = self.max_turns(stage)
        retries = self.o.max_retries if stage == GENERATE else 0
        for t in targets:
            conv = conversations.get((t.key, t.sample)) or Conversation(stage, t.key, t.sample, ())
            if conv.stop_reason(
                max_turns=limit, tool_error_limit=self.o.tool_error_limit, max_retries=retries
            ):
                continue
            if conv.turns and not conv.turns[-1].tools_done:
                continue  # its tools could not run (the worker failed to start): next round
            turn = len(conv.turns) + 1
            model = split_model_ref(t.model_ref)[1]
            request = ModelRequest(
                model=model,
                system=t.system,
                messages=conv.messages(t.user),
                temperature=t.temperature,
                max_tokens=self.o.max_tokens,
                seed=self.o.seed + t.sample,
                tools=TOOL_SPECS,
            )
            payload: TurnPayload = {
                "conversation": t.key,
                "turn": turn,
                "table_sha256": t.table.sha256,
            }
            if t.question_id is not None:
                payload["question_id"] = t.question_id
            yield WorkItem(
                key=item_key(stage, t.key, t.sample, turn),
                stage=stage,
                role="teacher" if stage == GENERATE else "solver",
                model_ref=t.model_ref,
                request=request,
                sample_index=t.sample,
                payload=dict(payload),
            )

    # -- tools ---------------------------------------------------------------------------------

    def pool(self) -> WorkerPool:
        if self._pool is None:
            self._pool = WorkerPool(
                max_table_workers=self.o.max_table_workers, limits=self.o.worker
            )
        return self._pool

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._sessions.clear()

    def _session(self, store: Store, conv: Conversation, table: TableRecord) -> ToolSession:
        session = self._sessions.get(conv.conv_id)
        if session is None:
            if self._cache is None:
                self._cache = ToolCache(store.path)
            source = TableSource(table.path, table.sha256, table.delimiter, table.encoding)
            session = ToolSession(
                self.pool(),
                source,
                conv.conv_id,
                cache=self._cache,
                max_rows=self.o.max_rows,
                max_chars=self.o.max_chars,
            )
            session.restore(conv.calls())  # frames made in earlier turns, replayed when needed
            self._sessions[conv.conv_id] = session
        return session

    def run_pending_tools(
        self, store: Store, run_id: int, stage: str, targets: Sequence[Target]
    ) -> dict[tuple[str, int], Conversation] | None:
        """Run and store the tool calls of finished turns that have no stored result yet.

        Returns the conversations as loaded when nothing had to run (still current), else
        None: the caller reloads them with the new results.
        """
        by_key = {(t.key, t.sample): t for t in targets}
        conversations = load_conversations(store, run_id, stage)
        jobs: list[tuple[Conversation, Turn, ToolCall, TableRecord]] = []
        for key, conv in conversations.items():
            target = by_key.get(key)
            if target is None:
                continue
            for turn in conv.turns:
                for tc in turn.tool_calls:
                    if tc.id not in turn.results:
                        jobs.append((conv, turn, tc, target.table))
        if not jobs:
            return conversations
        per_conv: dict[str, list[tuple[Conversation, Turn, ToolCall, TableRecord]]] = defaultdict(
            list
        )
        for job in jobs:
            per_conv[job[0].conv_id].append(job)

        def run(
            conv_jobs: list[tuple[Conversation, Turn, ToolCall, TableRecord]],
        ) -> list[tuple[Turn, ToolCall, ToolOutcome, str]]:
            out = []
            for conv, turn, tc, table in conv_jobs:  # in order: later calls use earlier frames
                session = self._session(store, conv, table)
                out.append((turn, tc, run_call(session, tc), table.sha256))
            return out

        workers = max(1, self.pool().max_workers * 2)
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="csv-tools") as ex:
            done = list(ex.map(run, per_conv.values()))
        with store.transaction() as conn:
            for results in done:
                for turn, tc, outcome, sha in results:
                    record_tool_call(
                        conn,
                        outcome,
                        table_sha256=sha,
                        call_id=tc.id,
                        run_id=run_id,
                        sample_id=turn.sample_id,
                    )
        return None

    # -- after a round -------------------------------------------------------------------------

    def after_round(self, store: Store, run_id: int, round_name: str) -> None:
        stage = self.base_stage(round_name)
        targets = self.targets(store, run_id, stage)
        conversations = self.run_pending_tools(store, run_id, stage, targets)
        if stage == GENERATE:
            self.validate_generated(store, run_id)
            conversations = None  # validation may have given a teacher feedback to answer
        if conversations is None:
            conversations = load_conversations(store, run_id, stage)
        if stage != GENERATE:
            self.verify_conversations(store, run_id, stage, conversations)
        self.release_finished(stage, conversations)

    def release_finished(
        self, stage: str, conversations: dict[tuple[str, int], Conversation]
    ) -> int:
        """Free the worker frames of conversations that are over (they hold memory)."""
        retries = self.o.max_retries if stage == GENERATE else 0
        n = 0
        for conv in conversations.values():
            session = self._sessions.get(conv.conv_id)
            reason = conv.stop_reason(
                max_turns=self.max_turns(stage),
                tool_error_limit=self.o.tool_error_limit,
                max_retries=retries,
            )
            if session is not None and reason is not None:
                session.close()
                del self._sessions[conv.conv_id]
                n += 1
        return n

    def validate_generated(self, store: Store, run_id: int) -> int:
        """Parse and validate each finished teacher conversation not yet validated."""
        conversations = load_conversations(store, run_id, GENERATE)
        validated = {
            int(r["parent_id"])
            for r in store.query(
                "SELECT DISTINCT parent_id FROM samples WHERE run_id = ? AND stage = ?"
                " AND parent_id IS NOT NULL",
                (run_id, QUESTION),
            )
        }
        accepted_by_table: dict[str, list[questions.GeneratedQuestion]] = defaultdict(list)
        for q in accepted_questions(store, run_id):
            accepted_by_table[str(q["table_sha256"])].append(
                questions.GeneratedQuestion.model_validate(q["question"])
            )
        tables = {t.sha256[:16]: t for t in self.tables(store)}
        n = 0
        for (key, sample), conv in sorted(conversations.items()):
            reason = conv.stop_reason(
                max_turns=self.max_turns(GENERATE), tool_error_limit=self.o.tool_error_limit
            )
            final = conv.turns[-1] if conv.turns else None
            if reason is None or final is None or final.sample_id in validated:
                continue
            table = tables.get(key)
            if table is None:
                continue
            rows: list[dict[str, Any]] = []
            if reason != "answered":
                rows.append(_question_row(run_id, f"{key}-{sample}-{reason}", final, table,
                                          None, reason, f"the teacher stopped: {reason}"))  # fmt: skip
            else:
                try:
                    raws = questions.parse_questions(final.text)
                except ValueError as exc:
                    raws = []
                    rows.append(_question_row(run_id, f"{key}-{sample}-malformed", final, table,
                                              final.text, "malformed_json", str(exc)))  # fmt: skip
                runner, sessions = self._dag_runner(table)
                try:
                    checks = questions.validate_questions(
                        raws,
                        table_sha256=table.sha256,
                        runner=runner,
                        accepted=accepted_by_table[table.sha256],
                        check_fragile=self.o.check_fragile,
                    )
                finally:
                    for session in sessions.values():
                        session.close()  # a DAG's frames are not needed after its check
                for check in checks:
                    if check.accepted and check.question is not None:
                        accepted_by_table[table.sha256].append(check.question)
                    rows.append(_check_row(run_id, check, final, table))
            with store.transaction():
                for row in rows:
                    store.conn.execute(
                        "INSERT OR IGNORE INTO samples(run_id, stage, item_key, problem_id,"
                        " sample_index, parent_id, call_id, role, model, status, output, payload,"
                        " created_at, updated_at) VALUES (:run_id, :stage, :item_key, NULL,"
                        " :sample_index, :parent_id, NULL, 'teacher', :model, :status, :output,"
                        " :payload, :now, :now)",
                        {**row, "model": self.o.teacher, "now": now_iso()},
                    )
            n += len(rows)
        return n

    def _dag_runner(
        self, table: TableRecord
    ) -> tuple[questions.ToolRunner, dict[str, ToolSession]]:
        """A runner with one frame space per DAG run, and the sessions to close afterwards."""
        source = TableSource(table.path, table.sha256, table.delimiter, table.encoding)
        sessions: dict[str, ToolSession] = {}
        pool = self.pool()

        def run(conv: str, tool: str, args: dict[str, Any]) -> dict[str, Any]:
            session = sessions.get(conv)
            if session is None:
                session = sessions[conv] = ToolSession(pool, source, f"dag/{conv}")
            return session.call(tool, args).result

        return run, sessions

    def verify_conversations(
        self,
        store: Store,
        run_id: int,
        stage: str,
        conversations: dict[tuple[str, int], Conversation] | None = None,
    ) -> int:
        """Verify every finished conversation of ``stage`` (re-runnable: rows are replaced)."""
        source = self.o.questions_run or run_id
        answers = {str(q["question_id"]): q for q in accepted_questions(store, source)}
        if conversations is None:
            conversations = load_conversations(store, run_id, stage)
        rows = []
        for (key, sample), conv in conversations.items():
            reason = conv.stop_reason(
                max_turns=self.o.max_turns, tool_error_limit=self.o.tool_error_limit
            )
            q = answers.get(key)
            if reason is None or q is None:
                continue
            question = questions.GeneratedQuestion.model_validate(q["question"])
            payload = verify_payload(
                conv, question, reason, str(q["table_sha256"]), self.o.min_overlap
            )
            rows.append(
                {
                    "run_id": run_id,
                    "stage": VERIFY,
                    "item_key": f"{VERIFY}/{stage}/{key}/{sample}",
                    "sample_index": sample,
                    "parent_id": conv.turns[-1].sample_id,
                    "status": SampleStatus.DONE,
                    "output": conv.final_text,
                    "payload": dumps(payload),
                    "now": now_iso(),
                }
            )
        with store.transaction():
            for row in rows:
                store.conn.execute(
                    "INSERT INTO samples(run_id, stage, item_key, problem_id, sample_index,"
                    " parent_id, call_id, role, model, status, output, payload, created_at,"
                    " updated_at) VALUES (:run_id, :stage, :item_key, NULL, :sample_index,"
                    " :parent_id, NULL, 'verifier', NULL, :status, :output, :payload, :now, :now)"
                    " ON CONFLICT(run_id, item_key) DO UPDATE SET payload = excluded.payload,"
                    " output = excluded.output, parent_id = excluded.parent_id,"
                    " updated_at = excluded.updated_at",
                    row,
                )
        return len(rows)


def run_call(session: ToolSession, tc: ToolCall) -> ToolOutcome:
    """One model tool call through a session; arguments the adapter could not parse are an error."""
    args = dict(tc.arguments)
    if set(args) == {"_raw"}:
        result = error_result(f"arguments are not valid JSON: {str(args['_raw'])[:200]}")
        shown = render.render_result(result, max_rows=session.max_rows, max_chars=session.max_chars)
        return ToolOutcome(tc.name, args, result, shown, 0.0)
    return session.call(tc.name, args)


def verify_payload(
    conv: Conversation,
    question: questions.GeneratedQuestion,
    stop_reason: str,
    table_sha256: str,
    min_overlap: float,
) -> VerifyPayload:
    verdict = verify.verify(conv.final_text, question.answers, question.specs())
    overlap = verify.dag_overlap(conv.calls(), [n.model_dump() for n in question.dag])
    decision = verify.keep_decision(
        verdict, stop_reason=stop_reason, overlap=overlap, min_overlap=min_overlap
    )
    n_calls = sum(len(t.tool_calls) for t in conv.turns)
    n_errors = sum(1 for t in conv.turns for r in t.results.values() if r.error_kind)
    return {
        "stage": conv.stage,
        "question_id": conv.key,
        "sample": conv.sample,
        "table_sha256": table_sha256,
        "stop_reason": stop_reason,
        "turns": len(conv.turns),
        "tool_calls": n_calls,
        "tool_errors": n_errors,
        "input_tokens": sum(t.input_tokens for t in conv.turns),
        "output_tokens": sum(t.output_tokens for t in conv.turns),
        "subs": [
            {"name": s.name, "status": s.status, "predicted": s.predicted, "gold": s.gold}
            for s in verdict.subs
        ],
        "score": verdict.score,
        "correct": verdict.correct and stop_reason == "answered",
        "keep": decision.keep,
        "reasons": list(decision.reasons),
        "tags": list(decision.tags),
        "overlap": {"jaccard": overlap.jaccard, "ordered": overlap.ordered},
        "final_sample_id": conv.turns[-1].sample_id,
    }


def _question_row(
    run_id: int,
    qid: str,
    final: Turn,
    table: TableRecord,
    raw: Any,
    reason: str,
    message: str,
) -> dict[str, Any]:
    payload = {
        "question_id": qid,
        "table_sha256": table.sha256,
        "table_name": table.name,
        "status": reason,
        "reason": f"{reason}: {message}",
        "question": None,
    }
    return {
        "run_id": run_id,
        "stage": QUESTION,
        "item_key": f"{QUESTION}/{qid}/0",
        "sample_index": 0,
        "parent_id": final.sample_id,
        "status": SampleStatus.INVALID,
        "output": raw if isinstance(raw, str) else json.dumps(raw),
        "payload": dumps(payload),
    }


def _check_row(
    run_id: int, check: questions.QuestionCheck, final: Turn, table: TableRecord
) -> dict[str, Any]:
    payload = {
        "question_id": check.question_id,
        "table_sha256": table.sha256,
        "table_name": table.name,
        "status": "accepted" if check.accepted else check.reason,
        "reason": None if check.accepted else f"{check.reason}: {check.message}",
        "flags": list(check.flags),
        "recomputed": render.json_safe(check.recomputed),
        "question": check.question.model_dump(mode="json") if check.question else None,
    }
    return {
        "run_id": run_id,
        "stage": QUESTION,
        "item_key": f"{QUESTION}/{check.question_id}/0",
        "sample_index": 0,
        "parent_id": final.sample_id,
        "status": SampleStatus.DONE if check.accepted else SampleStatus.INVALID,
        "output": json.dumps(check.raw, ensure_ascii=False, default=str),
        "payload": dumps(payload),
    }


def accepted_questions(store: Store, run_id: int) -> list[dict[str, Any]]:
    """Accepted questions of a run, in the order they were validated (payload dicts)."""
    rows = store.query(
        "SELECT payload FROM samples WHERE run_id = ? AND stage = ? AND status = ? ORDER BY id",
        (run_id, QUESTION, SampleStatus.DONE),
    )
    return [loads(r["payload"], {}) for r in rows]


def questions_source(store: Store, run_id: int) -> int:
    """The run whose questions ``run_id`` answered: its ``questions_run``, or itself."""
    config = store.get_run(run_id)["config"]
    source = config.get("questions_run") if isinstance(config, dict) else None
    return int(source) if source else run_id


def question_rows(store: Store, run_id: int) -> list[dict[str, Any]]:
    """Every question of a run with its status, reason and raw output."""
    rows = store.query(
        "SELECT id, status, output, payload FROM samples WHERE run_id = ? AND stage = ?"
        " ORDER BY id",
        (run_id, QUESTION),
    )
    for r in rows:
        r["payload"] = loads(r["payload"], {})
    return rows


def verified(store: Store, run_id: int, stage: str | None = None) -> list[VerifyPayload]:
    rows = store.query(
        "SELECT payload FROM samples WHERE run_id = ? AND stage = ? ORDER BY id", (run_id, VERIFY)
    )
    out: list[VerifyPayload] = [loads(r["payload"], {}) for r in rows]
    return [p for p in out if stage is None or p.get("stage") == stage]


@dataclass(frozen=True)
class StageScores:
    """Per stage: DABench's accuracies over first attempts, and pass rates over all."""

    stage: str
    conversations: int
    kept: int
    scores: verify.RunScores
    pass_rates: dict[str, verify.PassRate]
    stop_reasons: dict[str, int]


def stage_scores(store: Store, run_id: int, stage: str, ks: Sequence[int] = (1,)) -> StageScores:
    rows = verified(store, run_id, stage)
    first = []
    outcomes: dict[str, list[bool]] = defaultdict(list)
    stops: dict[str, int] = defaultdict(int)
    for p in rows:
        subs = tuple(
            verify.SubVerdict(s["name"], s["status"], s["predicted"], s["gold"])
            for s in p.get("subs", [])
        )
        verdict = verify.Verdict(subs, parsed=any(s.status != "no_answer" for s in subs))
        if p.get("sample") == 0:
            first.append(verdict)
        outcomes[str(p.get("question_id"))].append(bool(p.get("correct")))
        stops[str(p.get("stop_reason"))] += 1
    started = int(
        store.scalar(
            "SELECT COUNT(*) FROM (SELECT DISTINCT json_extract(payload, '$.conversation'),"
            " sample_index FROM samples WHERE run_id = ? AND stage = ?)",
            (run_id, stage),
        )
        or 0
    )
    if started > len(rows):  # begun, never finished: the budget stopped the run, or it still runs
        budget = store.get_run(run_id)["status"] == RunStatus.BUDGET
        stops["budget" if budget else "unfinished"] += started - len(rows)
    return StageScores(
        stage=stage,
        conversations=len(rows),
        kept=sum(bool(p.get("keep")) for p in rows),
        scores=verify.score_run(first),
        pass_rates={q: verify.pass_rate(o, ks) for q, o in outcomes.items()},
        stop_reasons=dict(stops),
    )
