# promlint.awk -- check that input is valid Prometheus text exposition
# format (version 0.0.4) and follows the naming conventions watchpost keeps.
#
#   awk -f promlint.awk metrics.txt
#
# Prints one "promlint: line N: problem" per problem on stderr and exits 1
# if there was any, else exits 0.  POSIX awk only (mawk is Debian's default).
#
# Format: HELP and TYPE at most once per family and before its samples; a
# family's lines are contiguous; metric and label names are well formed;
# label values use only the \\ \" \n escapes; values are floats, +Inf, -Inf
# or NaN; no series is repeated.  Histograms: only _bucket, _sum and _count
# samples, every bucket series has `le`, bounds increase, counts are
# cumulative, the last bucket is le="+Inf" and equals _count.
# Conventions: every family has HELP and TYPE, counters end in _total,
# durations are in seconds (no _ms, _milliseconds, ... suffixes).

function problem(msg) {
	printf "promlint: line %d: %s: %s\n", NR, msg, $0 > "/dev/stderr"
	bad++
}

# Enter family f; a family seen before and left since is an error.
function enter(f) {
	if (f == cur)
		return
	if (f in closed)
		problem("family " f " is not contiguous")
	if (cur != "")
		closed[cur] = 1
	cur = f
}

function is_value(v) {
	return v ~ /^[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$/ ||
	    v == "+Inf" || v == "-Inf" || v == "NaN"
}

# Numeric value of a sample value (+Inf as a huge number).
function num(v) {
	if (v == "+Inf")
		return 1e308 * 10
	if (v == "-Inf")
		return -1e308 * 10
	return v + 0
}

# Parse the labels at the start of s (which begins with "{").  Sets LABELS
# (the labels without le, as written), LE (le's value or ""), and returns
# the rest of s after "}", or "\001" on a syntax error.
function parse_labels(s,    seen, lname, val, c, i, out) {
	LABELS = ""
	LE = ""
	HAS_LE = 0
	s = substr(s, 2)
	split("", seen)
	while (1) {
		if (substr(s, 1, 1) == "}")
			return substr(s, 2)
		if (!match(s, /^[a-zA-Z_][a-zA-Z0-9_]*/)) {
			problem("bad label name")
			return "\001"
		}
		lname = substr(s, 1, RLENGTH)
		s = substr(s, RLENGTH + 1)
		if (lname in seen)
			problem("label " lname " repeated")
		seen[lname] = 1
		if (substr(s, 1, 2) != "=\"") {
			problem("expected =\" after label " lname)
			return "\001"
		}
		s = substr(s, 3)
		val = ""
		for (i = 1; ; i++) {
			c = substr(s, i, 1)
			if (c == "") {
				problem("unterminated label value")
				return "\001"
			}
			if (c == "\"")
				break
			if (c == "\\") {
				i++
				c = substr(s, i, 1)
				if (c != "\\" && c != "\"" && c != "n") {
					problem("bad escape \\" c " in label value")
					return "\001"
				}
				val = val "\\" c
				continue
			}
			val = val c
		}
		s = substr(s, i + 1)
		if (lname == "le") {
			LE = val
			HAS_LE = 1
		} else {
			out = lname "=\"" val "\""
			LABELS = LABELS == "" ? out : LABELS "," out
		}
		c = substr(s, 1, 1)
		if (c == ",")
			s = substr(s, 2)
		else if (c != "}") {
			problem("expected , or } after label " lname)
			return "\001"
		}
	}
}

/^[ \t]*$/ { next }

/^# HELP / {
	n = $3
	if (n !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/)
		problem("bad metric name in HELP")
	if (n in help)
		problem("second HELP for " n)
	if (NF < 4)
		problem("HELP without text")
	help[n] = 1
	enter(n)
	next
}

/^# TYPE / {
	n = $3
	t = $4
	if (NF != 4)
		problem("TYPE needs exactly a name and a type")
	if (t != "counter" && t != "gauge" && t != "histogram" &&
	    t != "summary" && t != "untyped")
		problem("unknown type " t)
	if (n in type)
		problem("second TYPE for " n)
	if (n in sampled)
		problem("TYPE after samples of " n)
	type[n] = t
	order[++n_fam] = n
	enter(n)
	next
}

/^#/ { next }

{
	line = $0
	if (!match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) {
		problem("bad metric name")
		next
	}
	name = substr(line, 1, RLENGTH)
	rest = substr(line, RLENGTH + 1)
	LABELS = ""
	LE = ""
	HAS_LE = 0
	if (substr(rest, 1, 1) == "{") {
		rest = parse_labels(rest)
		if (rest == "\001")
			next
	}
	nf = split(rest, f, " ")
	if (substr(rest, 1, 1) != " " || nf < 1 || nf > 2) {
		problem("expected one space, a value and an optional timestamp")
		next
	}
	if (!is_value(f[1]))
		problem("bad value " f[1])
	if (nf == 2 && f[2] !~ /^-?[0-9]+$/)
		problem("bad timestamp " f[2])
	value = f[1]

	# The family this sample belongs to.
	fam = name
	suffix = ""
	if (!(name in type) && match(name, /_(bucket|sum|count)$/)) {
		base = substr(name, 1, RSTART - 1)
		if ((base in type) && (type[base] == "histogram" ||
		    type[base] == "summary")) {
			fam = base
			suffix = substr(name, RSTART + 1)
		}
	}
	if (!(fam in type)) {
		problem("sample without TYPE")
		type[fam] = "untyped"
	}
	if (!(fam in help))
		problem("family " fam " has no HELP")
	help[fam] = 1
	enter(fam)
	sampled[fam] = 1

	key = name "{" LABELS (HAS_LE ? ",le=" LE : "") "}"
	if (key in series)
		problem("series repeated")
	series[key] = 1

	if (type[fam] == "counter") {
		if (fam !~ /_total$/)
			problem("counter " fam " does not end in _total")
		if (num(value) < 0)
			problem("negative counter")
	}
	if (type[fam] == "histogram") {
		if (suffix == "") {
			problem("histogram sample must be _bucket, _sum or _count")
			next
		}
		g = fam "{" LABELS "}"
		if (suffix == "bucket") {
			if (!HAS_LE) {
				problem("bucket without le")
				next
			}
			if (!is_value(LE)) {
				problem("bad le " LE)
				next
			}
			if ((g in last_le) && num(LE) <= last_le[g])
				problem("le bounds must increase")
			if ((g in last_n) && num(value) < last_n[g])
				problem("bucket counts must be cumulative")
			if (g in inf)
				problem("bucket after le=\"+Inf\"")
			last_le[g] = num(LE)
			last_n[g] = num(value)
			if (LE == "+Inf")
				inf[g] = value
			groups[g] = 1
		} else {
			if (HAS_LE)
				problem("le on _" suffix)
			if (suffix == "count")
				count[g] = value
			if (suffix == "sum")
				sum[g] = value
			groups[g] = 1
		}
	}
	if (fam ~ /_(ms|milliseconds|msec|us|usec|microseconds|ns|nanoseconds|minutes|hours|days)(_total)?$/)
		problem("use base units (seconds) in " fam)
}

END {
	for (g in groups) {
		if (!(g in inf)) {
			printf "promlint: histogram %s has no le=\"+Inf\" bucket\n", g > "/dev/stderr"
			bad++
		} else if (!(g in count) || num(count[g]) != num(inf[g])) {
			printf "promlint: histogram %s: _count differs from the +Inf bucket\n", g > "/dev/stderr"
			bad++
		}
		if (!(g in sum)) {
			printf "promlint: histogram %s has no _sum\n", g > "/dev/stderr"
			bad++
		}
	}
	if (NR == 0) {
		print "promlint: empty input" > "/dev/stderr"
		bad++
	}
	exit (bad > 0)
}
