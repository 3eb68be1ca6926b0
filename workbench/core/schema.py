"""Store schema as ordered, forward-only migrations.

Each migration is a list of SQL statements applied in one transaction; the
``schema_version`` table records which have run.  Never edit a migration that
has shipped: append a new one.
"""

from __future__ import annotations

MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (
        1,
        "initial schema",
        [
            """
            CREATE TABLE datasets (
                id TEXT PRIMARY KEY,
                name TEXT NOT NULL,
                origin TEXT NOT NULL,          -- hub name or file path
                format TEXT NOT NULL,          -- gsm8k / math / numina / ocw / mapped
                config TEXT,
                split TEXT,
                n_problems INTEGER NOT NULL DEFAULT 0,
                meta TEXT NOT NULL DEFAULT '{}',
                imported_at TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE problems (
                id TEXT PRIMARY KEY,           -- stable: dataset id + native id or content hash
                dataset_id TEXT NOT NULL REFERENCES datasets(id) ON DELETE CASCADE,
                source TEXT NOT NULL,          -- gsm8k / math / numina / ocw / csv / ...
                question TEXT NOT NULL,
                solution TEXT NOT NULL DEFAULT '',
                answer TEXT NOT NULL DEFAULT '',
                subject TEXT,
                level INTEGER,
                steps TEXT NOT NULL DEFAULT '[]',  -- JSON list of step strings
                n_steps INTEGER NOT NULL DEFAULT 0,
                meta TEXT NOT NULL DEFAULT '{}',
                created_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX idx_problems_dataset ON problems(dataset_id)",
            "CREATE INDEX idx_problems_source_level ON problems(source, level)",
            "CREATE INDEX idx_problems_subject ON problems(subject)",
            """
            CREATE TABLE problem_sets (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                note TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE problem_set_members (
                set_id INTEGER NOT NULL REFERENCES problem_sets(id) ON DELETE CASCADE,
                problem_id TEXT NOT NULL REFERENCES problems(id) ON DELETE CASCADE,
                position INTEGER NOT NULL,
                PRIMARY KEY (set_id, problem_id)
            )
            """,
            """
            CREATE TABLE prompts (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE,
                purpose TEXT NOT NULL,         -- perturb / solve / continue / judge / select / csv-*
                created_at TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE prompt_versions (
                id INTEGER PRIMARY KEY,
                prompt_id INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
                content_hash TEXT NOT NULL,
                parent_id INTEGER REFERENCES prompt_versions(id),
                body TEXT NOT NULL,            -- full file text, front matter included
                note TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL,
                UNIQUE (prompt_id, content_hash)
            )
            """,
            """
            CREATE TABLE runs (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL,
                kind TEXT NOT NULL,            -- experiment type
                config TEXT NOT NULL,          -- JSON snapshot of the validated config
                status TEXT NOT NULL,          -- pending/running/paused/done/failed/cancelled/stopped: budget
                budget_usd REAL,
                error TEXT,
                created_at TEXT NOT NULL,
                started_at TEXT,
                finished_at TEXT
            )
            """,
            "CREATE INDEX idx_runs_status ON runs(status)",
            """
            CREATE TABLE calls (
                id INTEGER PRIMARY KEY,
                run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,  -- NULL for ad-hoc calls
                item_key TEXT,
                provider TEXT NOT NULL,
                base_url TEXT NOT NULL DEFAULT '',
                model TEXT NOT NULL,
                continuation TEXT,             -- raw / prefill / emulate / NULL when no prefix
                request_hash TEXT NOT NULL,    -- the cache key
                request TEXT NOT NULL,         -- JSON of the provider-neutral request
                sent_params TEXT NOT NULL DEFAULT '{}',  -- what the adapter actually sent
                response_text TEXT,
                response TEXT,                 -- JSON: completions, tool calls
                finish_reason TEXT,
                input_tokens INTEGER,
                output_tokens INTEGER,
                cached_tokens INTEGER,
                cost_usd REAL,                 -- NULL = unknown price, never 0 by default
                latency_ms REAL,
                attempts INTEGER NOT NULL DEFAULT 1,
                status TEXT NOT NULL,          -- ok / error
                error_kind TEXT,
                error TEXT,
                cache_hit INTEGER NOT NULL DEFAULT 0,
                cached_from INTEGER REFERENCES calls(id),
                created_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX idx_calls_run_status ON calls(run_id, status)",
            "CREATE INDEX idx_calls_hash ON calls(request_hash, status)",
            "CREATE INDEX idx_calls_run_item ON calls(run_id, item_key)",
            """
            CREATE TABLE samples (
                id INTEGER PRIMARY KEY,
                run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                stage TEXT NOT NULL,
                item_key TEXT NOT NULL,        -- idempotent work-item key
                problem_id TEXT REFERENCES problems(id),
                sample_index INTEGER NOT NULL DEFAULT 0,
                parent_id INTEGER REFERENCES samples(id),
                call_id INTEGER REFERENCES calls(id),
                role TEXT,                     -- solver / perturber / completer / judge / ...
                model TEXT,
                status TEXT NOT NULL,          -- done / error / invalid / skipped
                output TEXT,
                payload TEXT NOT NULL DEFAULT '{}',
                created_at TEXT NOT NULL,
                updated_at TEXT NOT NULL,
                UNIQUE (run_id, item_key)
            )
            """,
            "CREATE INDEX idx_samples_run_stage ON samples(run_id, stage, status)",
            "CREATE INDEX idx_samples_run_problem ON samples(run_id, problem_id)",
            "CREATE INDEX idx_samples_problem ON samples(problem_id)",
            "CREATE INDEX idx_samples_parent ON samples(parent_id)",
            """
            CREATE TABLE grades (
                id INTEGER PRIMARY KEY,
                sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
                grader TEXT NOT NULL,          -- grader name + version
                gold TEXT,
                extracted TEXT,
                normalised TEXT,
                correct INTEGER,               -- 1 / 0 / NULL when ungraded
                status TEXT NOT NULL,          -- graded / no_answer / timeout / error
                method TEXT,                   -- what decided: numeric / sympy / string / ...
                reason TEXT,
                created_at TEXT NOT NULL,
                UNIQUE (sample_id, grader)
            )
            """,
            "CREATE INDEX idx_grades_sample ON grades(sample_id)",
            """
            CREATE TABLE labels (
                id INTEGER PRIMARY KEY,
                sample_id INTEGER NOT NULL REFERENCES samples(id) ON DELETE CASCADE,
                label TEXT NOT NULL,
                note TEXT NOT NULL DEFAULT '',
                created_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX idx_labels_sample ON labels(sample_id)",
            "CREATE INDEX idx_labels_label ON labels(label)",
            """
            CREATE TABLE difficulty (
                problem_id TEXT NOT NULL REFERENCES problems(id) ON DELETE CASCADE,
                model TEXT NOT NULL,
                n INTEGER NOT NULL,
                n_correct INTEGER NOT NULL,
                solve_rate REAL NOT NULL,
                bin TEXT NOT NULL,             -- hard / medium / easy (configurable edges)
                run_id INTEGER REFERENCES runs(id) ON DELETE SET NULL,
                updated_at TEXT NOT NULL,
                PRIMARY KEY (problem_id, model)
            )
            """,
            "CREATE INDEX idx_difficulty_model_bin ON difficulty(model, bin)",
            """
            CREATE TABLE batches (
                id INTEGER PRIMARY KEY,
                run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                provider TEXT NOT NULL,
                remote_id TEXT,
                status TEXT NOT NULL,
                meta TEXT NOT NULL DEFAULT '{}',
                created_at TEXT NOT NULL
            )
            """,
        ],
    ),
]

MIGRATIONS.append(
    (
        2,
        "problem library indexes for paged, sorted queries",
        [
            # filtered pages in id order, and sorts, without a temp b-tree over the table
            "CREATE INDEX IF NOT EXISTS idx_problems_source_id ON problems(source, id)",
            "CREATE INDEX IF NOT EXISTS idx_problems_source_level_id "
            "ON problems(source, level, id)",
            "CREATE INDEX IF NOT EXISTS idx_problems_dataset_id ON problems(dataset_id, id)",
            "CREATE INDEX IF NOT EXISTS idx_problems_level_id ON problems(level, id)",
        ],
    )
)

MIGRATIONS.append(
    (
        3,
        "trace stepper order; calls by model for pre-launch projections",
        [
            # the stepper lists a run's samples by problem, then sample index, without a sort
            "CREATE INDEX IF NOT EXISTS idx_samples_run_problem_index "
            "ON samples(run_id, problem_id, sample_index)",
            # the run builder averages earlier output tokens per (provider, model)
            "CREATE INDEX IF NOT EXISTS idx_calls_provider_model ON calls(provider, model, status)",
        ],
    )
)

MIGRATIONS.append(
    (
        4,
        "run lease (owner, heartbeat) and the history of a run's budget and concurrency",
        [
            # who is executing the run: one executor at a time; a stale heartbeat = interrupted
            "ALTER TABLE runs ADD COLUMN owner_pid INTEGER",
            "ALTER TABLE runs ADD COLUMN owner_host TEXT",
            "ALTER TABLE runs ADD COLUMN owner_token TEXT",
            "ALTER TABLE runs ADD COLUMN heartbeat_at REAL",  # unix seconds
            """
            CREATE TABLE run_settings (
                id INTEGER PRIMARY KEY,
                run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                budget_usd REAL,               -- NULL = no cap
                concurrency INTEGER,           -- NULL = the providers' settings
                note TEXT NOT NULL DEFAULT '', -- created / resume / ...
                changed_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX idx_run_settings_run ON run_settings(run_id, id)",
        ],
    )
)

MIGRATIONS.append(
    (
        5,
        "trigram full-text index over problem ids and questions, for search at a million",
        [
            # External content: the index holds trigrams only, the text stays in problems.
            # It is keyed on problems' implicit rowid, which only a VACUUM renumbers: the
            # store never vacuums, and search re-checks every hit with LIKE, so a stale
            # index can miss rows but never show a wrong one.
            "CREATE VIRTUAL TABLE IF NOT EXISTS problems_fts USING fts5("
            "id, question, content='problems', content_rowid='rowid', tokenize='trigram')",
            "CREATE TRIGGER IF NOT EXISTS problems_fts_insert AFTER INSERT ON problems BEGIN "
            "INSERT INTO problems_fts(rowid, id, question) "
            "VALUES (new.rowid, new.id, new.question); END",
            "CREATE TRIGGER IF NOT EXISTS problems_fts_delete AFTER DELETE ON problems BEGIN "
            "INSERT INTO problems_fts(problems_fts, rowid, id, question) "
            "VALUES ('delete', old.rowid, old.id, old.question); END",
            "CREATE TRIGGER IF NOT EXISTS problems_fts_update AFTER UPDATE OF id, question "
            "ON problems BEGIN "
            "INSERT INTO problems_fts(problems_fts, rowid, id, question) "
            "VALUES ('delete', old.rowid, old.id, old.question); "
            "INSERT INTO problems_fts(rowid, id, question) "
            "VALUES (new.rowid, new.id, new.question); END",
            "INSERT INTO problems_fts(problems_fts) VALUES ('rebuild')",
        ],
    )
)

MIGRATIONS.append(
    (
        6,
        "batch mode: batch_items (custom_id -> item), batch columns; calls.endpoint (pools)",
        [
            "ALTER TABLE batches ADD COLUMN uuid TEXT",  # local id, sent as metadata
            "ALTER TABLE batches ADD COLUMN stage TEXT",
            "ALTER TABLE batches ADD COLUMN model TEXT",  # provider:model; one model per batch
            "ALTER TABLE batches ADD COLUMN n_items INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE batches ADD COLUMN reserved_usd REAL NOT NULL DEFAULT 0",
            "ALTER TABLE batches ADD COLUMN prepared_at REAL",  # unix seconds
            "ALTER TABLE batches ADD COLUMN updated_at TEXT",
            "CREATE UNIQUE INDEX IF NOT EXISTS idx_batches_uuid ON batches(uuid)",
            "CREATE INDEX IF NOT EXISTS idx_batches_run_status ON batches(run_id, status)",
            """
            CREATE TABLE batch_items (
                custom_id TEXT PRIMARY KEY,    -- wb + base32(sha256(run, key, attempt))[:30]
                batch_id INTEGER NOT NULL REFERENCES batches(id) ON DELETE CASCADE,
                run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
                item_key TEXT NOT NULL,
                attempt INTEGER NOT NULL,      -- 1 for the first batch this item went in
                state TEXT NOT NULL,           -- out / done / error / requeued
                item TEXT NOT NULL             -- the work item as JSON: results are recorded
                                               -- without re-running the experiment's stages
            )
            """,
            "CREATE INDEX idx_batch_items_batch ON batch_items(batch_id, state)",
            "CREATE INDEX idx_batch_items_run_key ON batch_items(run_id, item_key)",
            # the replica of an endpoint pool that served the call (NULL: a single endpoint)
            "ALTER TABLE calls ADD COLUMN endpoint TEXT",
        ],
    )
)

MIGRATIONS.append(
    (
        7,
        "CSV agent: imported tables, tool calls per conversation, the tool-result cache",
        [
            """
            CREATE TABLE tables (
                id INTEGER PRIMARY KEY,
                sha256 TEXT NOT NULL UNIQUE,   -- of the file's bytes: the table's identity
                name TEXT NOT NULL,
                path TEXT NOT NULL,
                encoding TEXT NOT NULL,        -- utf-8 / utf-8-sig / latin-1
                delimiter TEXT NOT NULL,
                n_rows INTEGER NOT NULL,
                n_columns INTEGER NOT NULL,
                columns TEXT NOT NULL,         -- JSON list of column names (after renaming)
                dtypes TEXT NOT NULL,          -- JSON {column: dtype}
                profile TEXT NOT NULL,         -- JSON: per-column stats and a head sample
                size_bytes INTEGER NOT NULL,
                imported_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX idx_tables_name ON tables(name)",
            """
            CREATE TABLE tool_calls (
                id INTEGER PRIMARY KEY,
                run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
                sample_id INTEGER REFERENCES samples(id) ON DELETE CASCADE,  -- conversation turn
                call_id TEXT NOT NULL,         -- the model's tool-call id
                table_sha256 TEXT NOT NULL,
                tool TEXT NOT NULL,
                args TEXT NOT NULL,            -- JSON, canonical
                raw BLOB NOT NULL,             -- zlib-compressed JSON result
                shown TEXT NOT NULL,           -- what the model saw (truncated)
                duration_ms REAL NOT NULL,
                error_kind TEXT,               -- NULL when the call succeeded
                cache_hit INTEGER NOT NULL DEFAULT 0,
                created_at TEXT NOT NULL
            )
            """,
            "CREATE INDEX idx_tool_calls_sample ON tool_calls(sample_id)",
            "CREATE INDEX idx_tool_calls_run ON tool_calls(run_id)",
            """
            CREATE TABLE tool_cache (
                key TEXT PRIMARY KEY,          -- sha256 of (table, tool, args, input lineage)
                table_sha256 TEXT NOT NULL,
                tool TEXT NOT NULL,
                raw BLOB NOT NULL,             -- zlib-compressed JSON result
                created_at TEXT NOT NULL
            )
            """,
        ],
    )
)

MIGRATIONS.append(
    (
        8,
        "archived runs (runs.archive); one copy of each payload: request JSON over 1 KB in "
        "blobs, an answered call's text in its sample",
        [
            # JSON: {"dir", "files", "rows", "archived_at", "pruned", "totals"}; NULL: never
            # archived.  A pruned run keeps this row and its totals here.
            "ALTER TABLE runs ADD COLUMN archive TEXT",
            # content-addressed request JSON: sha256 of the text -> zlib-compressed text.
            # A call whose request is over 1 KB has calls.request '' and request_blob set
            # (k samples of one prompt, and every cache hit, share one copy).
            "CREATE TABLE blobs (hash TEXT PRIMARY KEY, data BLOB NOT NULL)",
            "ALTER TABLE calls ADD COLUMN request_blob TEXT",
            # an ok call whose text is its sample's output stores it there only
            # (calls.response_text NULL); the cache reads it through this index
            "CREATE INDEX idx_samples_call ON samples(call_id)",
        ],
    )
)

LATEST_VERSION = MIGRATIONS[-1][0]
