#!/usr/bin/python3
"""contrib-check.py DASHBOARD RULES METRICS OUT

Checks the PromQL of contrib/grafana/watchpost.json (every panel target and
every query variable) and of contrib/prometheus/watchpost-rules.yml against
METRICS, a scrape of a live agent's /metrics:

  - every metric name an expression selects is a sample name the agent
    exports (histograms as their _bucket/_sum/_count samples), a series a
    rule of RULES records (names with a colon), or, in RULES only, `up`
    (which Prometheus itself writes for each target);
  - every label an expression matches on, groups by or joins on is a label
    of the metrics the expression selects, or one Prometheus adds
    (instance, job) or a histogram's le.

It writes OUT, a Prometheus rules file recording each dashboard expression
with Grafana's variables substituted, for `promtool check rules` to parse.
Prints one problem per line on stderr and exits 1 if there was any; else
prints a summary on stdout and exits 0.  A small PromQL tokenizer, not a
parser: promtool judges the syntax, this judges the names.
"""
import json
import re
import sys

import yaml

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring",
            "group_left", "group_right", "bool", "offset", "inf", "nan"}
ADDED = {"instance", "job", "le", "__name__"}
GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)"
                      r"\s*\(([^)]*)\)")
SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)?\s*\{([^}]*)\}")
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
problems = []


def grafana_vars(expr):
    """Grafana's variables replaced by values PromQL accepts."""
    expr = re.sub(r"\$__(rate_interval|interval|range)\b", "5m", expr)
    expr = re.sub(r"\$\{?__[a-z_]+\}?", "5m", expr)
    return re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", ".*", expr)


def names_and_labels(expr):
    """(metric names, label names) an expression uses."""
    labels = set()
    names = set()
    s = re.sub(r'"(\\.|[^"\\])*"', '""', expr)   # string literals
    s = re.sub(r"\[[^\]]*\]", "", s)               # ranges, subqueries
    for m in GROUPING.finditer(s):
        labels |= {x.strip() for x in m.group(2).split(",") if x.strip()}
    s = GROUPING.sub(" ", s)
    for m in SELECTOR.finditer(s):
        if m.group(1) and m.group(1) not in KEYWORDS:
            names.add(m.group(1))
        for matcher in m.group(2).split(","):
            lm = IDENT.match(matcher.strip())
            if lm:
                labels.add(lm.group(0))
    s = SELECTOR.sub(lambda m: (m.group(1) or "") + " ", s)
    s = re.sub(r"\b\d+(\.\d+)?([eE][-+]?\d+)?\b", " ", s)
    for m in IDENT.finditer(s):
        word = m.group(0)
        rest = s[m.end():].lstrip()
        if word.lower() in KEYWORDS or rest.startswith("("):
            continue                               # operator, function
        names.add(word)
    return names, labels


def exported(path):
    """{sample name: set of its label names} of a scrape."""
    out = {}
    for line in open(path, encoding="utf-8"):
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{([^}]*)\})?", line)
        labs = set(re.findall(r'([A-Za-z_][A-Za-z0-9_]*)="', m.group(3) or ""))
        out.setdefault(m.group(1), set()).update(labs)
    return out


def check(where, expr, metrics, records, allowed):
    names, labels = names_and_labels(expr)
    if not names:
        problems.append("%s: selects no metric: %s" % (where, expr))
    have = set(ADDED)
    for n in sorted(names):
        if n in metrics:
            have |= metrics[n]
        elif n in records:
            have |= records[n]
        elif n not in allowed:
            problems.append("%s: %s is not exported by the agent" % (where, n))
            return
    for lab in sorted(labels - have):
        problems.append("%s: label %s is on none of %s" %
                        (where, lab, ", ".join(sorted(names))))


def main():
    dash_path, rules_path, metrics_path, out_path = sys.argv[1:5]
    metrics = exported(metrics_path)
    dash = json.load(open(dash_path, encoding="utf-8"))
    rules = yaml.safe_load(open(rules_path, encoding="utf-8"))
    n = 0

    # The rules: recorded names first (alerts may use them), each record's
    # labels being those of what it reads.
    records = {}
    for g in rules["groups"]:
        for r in g["rules"]:
            if "record" in r:
                names, _ = names_and_labels(r["expr"])
                labs = set(ADDED)
                for x in names:
                    labs |= metrics.get(x, set())
                records[r["record"]] = labs
    for g in rules["groups"]:
        for r in g["rules"]:
            what = r.get("record") or r.get("alert")
            check("%s: %s" % (rules_path, what), r["expr"], metrics,
                  records, {"up"})
            n += 1

    # The dashboard: panel targets and query variables, which are
    # label_values(SELECTOR, LABEL) rather than PromQL.
    out = []
    for p in dash["panels"]:
        for t in p.get("targets", []):
            expr = grafana_vars(t["expr"])
            check("%s: panel %r %s" % (dash_path, p["title"], t["refId"]),
                  expr, metrics, {}, set())
            out.append(expr)
            n += 1
    for v in dash["templating"]["list"]:
        if v["type"] != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((.*),\s*([A-Za-z_][A-Za-z0-9_]*)\)",
                         q.strip())
        if not m:
            problems.append("%s: variable %s: not label_values(SELECTOR, "
                            "LABEL): %s" % (dash_path, v["name"], q))
            continue
        expr = grafana_vars(m.group(1))
        check("%s: variable %s" % (dash_path, v["name"]),
              "%s{%s=~\".*\"}" % (expr, m.group(2)) if "{" not in expr
              else expr.replace("{", "{%s=~\".*\"," % m.group(2), 1),
              metrics, {}, set())
        out.append(expr)
        n += 1
    with open(out_path, "w", encoding="utf-8") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard", "rules": [
            {"record": "dashboard:expr_%d" % i, "expr": e}
            for i, e in enumerate(out)]}]}, f)

    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        return 1
    print("%d expressions (%d in the dashboard) use only exported metrics "
          "and their labels" % (n, len(out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
