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
        8,
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

LATEST_VERSION = MIGRATIONS[-1][0]
