"""Source fixes applied to FerretDB v1.24.2 before it is built (its last v1 release; upstream
no longer takes v1 changes). Each is a plain text replacement that must match exactly, so a
different source fails the build loudly instead of building something unreviewed.

1. ``_id`` lookups use the ``_id`` index. The SQLite backend indexes ``_ferretdb_sjson->"_id"``
   but filters with ``_ferretdb_sjson->'$._id'``; SQLite matches index expressions textually,
   so every ``find``/``update``/``delete`` by ``_id`` scanned the whole table (measured: an
   update by ``_id`` took 3.8 ms on 1,000 documents and 55 ms on 20,000). ``->'_id'`` means
   the same path (SQLite reads a bare label X as ``$.X``) and matches the index.
2. ``_id`` is pushed down to SQLite whenever the filter pins it, not only when it is the
   filter's one key: ``{_id: X, version: V}`` (the projector's conditional writes) and
   ``{_id: {$in: [...]}}`` (its batch reads) read only the matching rows instead of the whole
   table (measured on 20,000 documents: a ``$in`` of 500 ids 1.1 s before). The handlers
   filter every document again with the whole filter, so this only narrows what is read.
   ``explain`` reports the same pushdown and SQLite plan, which the integration test reads.
3. ``update`` closes each statement's cursor when the statement is done. The handler deferred
   every close to the end of the command, so each statement kept one of the database's 100
   SQLite connections: 100 statements in flight (in one command or several) deadlocked that
   database until a restart (measured: 99 pass, 100 hang). It also reads a statement's
   matches to the end and closes the read *before* writing them: SQLite can neither
   checkpoint its WAL past nor restart it under an open reader, and every update held one
   while it committed, so under a steady stream of updates the WAL grew without bound (117 MB
   in 8 s of conditional upserts) and each commit's automatic checkpoint redid work; with the
   read closed first the WAL stays at its 4 MB checkpoint size and a conditional upsert costs
   267 instead of 571 us (one client, batches of 100, on 2,000 documents).
4. Writes to one database wait for each other on a Go mutex instead of on SQLite's lock.
   SQLite has one writer per file; a connection that finds the lock taken sleeps in SQLite's
   busy handler (1, 2, 5, 10, ... 100 ms steps) instead of waking when the lock is free, so
   under concurrent writers most of a write's latency was sleep while the server sat idle.
5. A top-level equality on a plain string (``{category: "books"}``) is pushed down next to the
   ``_id`` one, as the expression the field's index is built on (``_ferretdb_sjson->"category"``),
   so the query-side search reads the matching rows through the index instead of decoding
   every document in Go. Only names of letters, digits and ``_`` and strings of characters
   that JSON never escapes are pushed (the encodings of Go and SQLite then agree byte for byte).
   Unlike MongoDB, a document whose field is an *array* containing the string is not matched
   through this pushdown; Tandem's read models have no array fields.
6. A top-level equality on a boolean (``{published: false}``) is pushed down the same way. The
   outbox relay's sweep and backlog count ask for the unpublished commits every few seconds;
   without this each read decoded every commit ever stored in Go (measured: 3.3 s per read
   on 30,000 commits, so two of them every 5 s kept most of a core busy under load).
7. A ``$regex`` on a top-level field (``{name: {$regex: "lamp", $options: "i"}}``), alone or in
   a ``$or`` of such (the query-side search: name or description), is pushed down as a SQLite
   function that runs the same Go ``regexp`` FerretDB's own filter runs (``types.Regex``'s
   compilation, so the same options and the same answers). Rows whose field is not a string
   (missing, null, arrays) are kept for FerretDB to decide, and a pattern Go cannot compile
   is not pushed, so this too only narrows. Without it a search decoded every row of its
   category in Go, twice (page and total): 12 searches/s on ~4,000 products per category.
"""

from __future__ import annotations

from pathlib import Path

PATCH_LEVEL = "tandem.8"
"""Part of the cached binary's name: changing the patches rebuilds it."""

PATCHES: dict[str, list[tuple[str, str]]] = {
    "internal/backends/sqlite/metadata/metadata.go": [
        ("IDColumn = DefaultColumn + \"->'$._id'\"", "IDColumn = DefaultColumn + \"->'_id'\""),
    ],
    "internal/backends/sqlite/collection.go": [
        (
            '\t"fmt"\n\t"sort"\n\t"strings"\n',
            '\t"database/sql/driver"\n\t"fmt"\n\t"regexp"\n\t"sort"\n\t"strings"\n'
            '\t"sync"\n\t"sync/atomic"\n',
        ),
        (
            """	if params.Filter.Len() == 1 {
		v, _ := params.Filter.Get("_id")
		switch v.(type) {
		case string, types.ObjectID:
			whereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)
			args = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}
		}
	}
""",
            """	if params.Filter != nil {
		whereClause, args = prepareIDWhereClause(params.Filter)
	}
""",
        ),
        (
            """	if params.Filter.Len() == 1 {
		v, _ := params.Filter.Get("_id")
		switch v.(type) {
		case string, types.ObjectID:
			filterPushdown = true
			whereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)
			args = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}
		}
	}
""",
            """	if params.Filter != nil {
		whereClause, args = prepareIDWhereClause(params.Filter)
		filterPushdown = whereClause != ""
	}
""",
        ),
        (
            "// InsertAll implements backends.Collection interface.\n",
            """// prepareIDWhereClause pushes down the filter's `_id` when it is a string or ObjectID, or a
// `$in` of those, and top-level equalities on plain strings and booleans (tandem patches). Callers filter
// every document again, so it only narrows.
func prepareIDWhereClause(filter *types.Document) (string, []any) {
	var conds []string
	var args []any

	if cond, condArgs := prepareIDCondition(filter); cond != "" {
		conds = append(conds, cond)
		args = append(args, condArgs...)
	}

	for _, k := range filter.Keys() {
		if k == "$or" {
			if cond, condArgs := tandemOrRegexCondition(must.NotFail(filter.Get(k))); cond != "" {
				conds = append(conds, cond)
				args = append(args, condArgs...)
			}

			continue
		}

		if k == "_id" || !tandemPlainName(k) {
			continue
		}

		if cond, condArgs := tandemRegexCondition(k, must.NotFail(filter.Get(k))); cond != "" {
			conds = append(conds, cond)
			args = append(args, condArgs...)

			continue
		}

		// the expression of the field's index (see metadata.Registry.indexesCreate)
		switch v := must.NotFail(filter.Get(k)).(type) {
		case string:
			if tandemPlainString(v) {
				conds = append(conds, fmt.Sprintf(`%s->"%s" = ?`, metadata.DefaultColumn, k))
				args = append(args, `"`+v+`"`)
			}
		case bool:
			conds = append(conds, fmt.Sprintf(`%s->"%s" = ?`, metadata.DefaultColumn, k))
			if v {
				args = append(args, "true")
			} else {
				args = append(args, "false")
			}
		}
	}

	if len(conds) == 0 {
		return "", nil
	}

	return " WHERE " + strings.Join(conds, " AND "), args
}

// tandemRegexCondition: `field: {$regex: p[, $options: o]}` (or a BSON regex) as a call of
// tandem_regexp, the Go regexp FerretDB's filter uses; non-strings are left to that filter.
func tandemRegexCondition(field string, v any) (string, []any) {
	var re types.Regex

	switch v := v.(type) {
	case types.Regex:
		re = v
	case *types.Document:
		if v.Len() == 0 || v.Len() > 2 {
			return "", nil
		}

		pattern, err := v.Get("$regex")
		if err != nil {
			return "", nil
		}

		switch p := pattern.(type) {
		case string:
			re.Pattern = p
		case types.Regex:
			re = p
		default:
			return "", nil
		}

		if v.Len() == 2 {
			options, err := v.Get("$options")
			if err != nil {
				return "", nil
			}

			o, ok := options.(string)
			if !ok {
				return "", nil
			}

			re.Options = o
		}
	default:
		return "", nil
	}

	compiled, err := re.Compile()
	if err != nil {
		return "", nil
	}

	cond := fmt.Sprintf(
		`(json_type(%[1]s, '$.%[2]s') IS NOT 'text' OR tandem_regexp(?, %[1]s->>'$.%[2]s'))`,
		metadata.DefaultColumn, field,
	)

	return cond, []any{compiled.String()}
}

// tandemOrRegexCondition: a `$or` whose every branch is one field's regex, as an SQL OR.
func tandemOrRegexCondition(v any) (string, []any) {
	arr, ok := v.(*types.Array)
	if !ok || arr.Len() == 0 || arr.Len() > 16 {
		return "", nil
	}

	var conds []string
	var args []any

	for i := 0; i < arr.Len(); i++ {
		branch, ok := must.NotFail(arr.Get(i)).(*types.Document)
		if !ok || branch.Len() != 1 {
			return "", nil
		}

		field := branch.Keys()[0]
		if !tandemPlainName(field) {
			return "", nil
		}

		cond, condArgs := tandemRegexCondition(field, must.NotFail(branch.Get(field)))
		if cond == "" {
			return "", nil
		}

		conds = append(conds, cond)
		args = append(args, condArgs...)
	}

	return "(" + strings.Join(conds, " OR ") + ")", args
}

var (
	tandemRegexps     sync.Map // compiled expression -> *regexp.Regexp
	tandemRegexpCount atomic.Int64
)

func init() {
	sqlite3.MustRegisterDeterministicScalarFunction("tandem_regexp", 2, tandemRegexpMatch)
}

// tandemRegexpMatch(expr, value): 1 when value matches, and when it cannot tell.
func tandemRegexpMatch(_ *sqlite3.FunctionContext, args []driver.Value) (driver.Value, error) {
	expr, ok := args[0].(string)
	if !ok {
		return int64(1), nil
	}

	value, ok := args[1].(string)
	if !ok {
		return int64(1), nil
	}

	var re *regexp.Regexp

	if cached, found := tandemRegexps.Load(expr); found {
		re = cached.(*regexp.Regexp)
	} else {
		var err error
		if re, err = regexp.Compile(expr); err != nil {
			return int64(1), nil
		}

		if tandemRegexpCount.Add(1) > 1024 {
			tandemRegexps.Range(func(k, _ any) bool { tandemRegexps.Delete(k); return true })
			tandemRegexpCount.Store(0)
		}

		tandemRegexps.Store(expr, re)
	}

	if re.MatchString(value) {
		return int64(1), nil
	}

	return int64(0), nil
}

func tandemPlainName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}

	for _, r := range s {
		if !(r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')) {
			return false
		}
	}

	return true
}

// tandemPlainString: printable ASCII that neither Go's nor SQLite's JSON encoder escapes.
func tandemPlainString(s string) bool {
	if len(s) > 256 {
		return false
	}

	for _, r := range s {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\\\' || r == '<' || r == '>' || r == '&' {
			return false
		}
	}

	return true
}

func prepareIDCondition(filter *types.Document) (string, []any) {
	v, err := filter.Get("_id")
	if err != nil {
		return "", nil
	}

	switch v := v.(type) {
	case string, types.ObjectID:
		return fmt.Sprintf(`%s = ?`, metadata.IDColumn), []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}
	case *types.Document:
		if v.Len() != 1 {
			return "", nil
		}

		in, err := v.Get("$in")
		if err != nil {
			return "", nil
		}

		arr, ok := in.(*types.Array)
		if !ok || arr.Len() == 0 || arr.Len() > 10000 {
			return "", nil
		}

		args := make([]any, 0, arr.Len())

		for i := 0; i < arr.Len(); i++ {
			e := must.NotFail(arr.Get(i))
			switch e.(type) {
			case string, types.ObjectID:
				args = append(args, string(must.NotFail(sjson.MarshalSingleValue(e))))
			default:
				return "", nil
			}
		}

		placeholders := strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")

		return fmt.Sprintf(`%s IN (%s)`, metadata.IDColumn, placeholders), args
	}

	return "", nil
}

// InsertAll implements backends.Collection interface.
""",
        ),
    ],
    "internal/handler/msg_update.go": [
        (
            "\t\tcloser := iterator.NewMultiCloser()\n\t\tdefer closer.Close()\n",
            "\t\tcloser := iterator.NewMultiCloser()\n",
        ),
        (
            '\t\tresult, err := common.UpdateDocument(ctx, c, "update", iter, &u)\n'
            "\t\tif err != nil {\n",
            "\t\t// tandem: read the matches, end the read, then write: an open reader pins\n"
            "\t\t// SQLite's WAL, so neither checkpoints nor WAL restarts could happen.\n"
            "\t\tmatches, err := iterator.ConsumeValues[struct{}, *types.Document](iter)\n"
            "\t\tcloser.Close()\n\n"
            "\t\tif err != nil {\n"
            "\t\t\treturn 0, 0, nil, lazyerrors.Error(err)\n"
            "\t\t}\n\n"
            "\t\tmatchedIter := iterator.Values(iterator.ForSlice(matches))\n"
            '\t\tresult, err := common.UpdateDocument(ctx, c, "update", matchedIter, &u)\n'
            "\t\tmatchedIter.Close()\n\n"
            "\t\tif err != nil {\n",
        ),
    ],
    "internal/util/fsql/db.go": [
        ('\t"log/slog"\n', '\t"log/slog"\n\t"sync"\n'),
        ("\tBatchSize int\n}", "\tBatchSize int\n\n\twriteMu sync.Mutex\n}"),
        (
            "\tvar sqlTx *sql.Tx\n",
            "\tvar sqlTx *sql.Tx\n\n\tdb.writeMu.Lock()\n\tdefer db.writeMu.Unlock()\n",
        ),
        (
            "\tres, err := db.sqlDB.ExecContext(ctx, query, args...)\n",
            "\tdb.writeMu.Lock()\n\tres, err := db.sqlDB.ExecContext(ctx, query, args...)\n"
            "\tdb.writeMu.Unlock()\n",
        ),
    ],
}


def apply(src: Path) -> None:
    for rel, replacements in PATCHES.items():
        path = src / rel
        text = path.read_text()
        for old, new in replacements:
            if text.count(old) != 1:
                raise ValueError(f"FerretDB patch does not apply to {rel}: {old!r}")
            text = text.replace(old, new)
        path.write_text(text)
