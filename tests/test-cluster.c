/*
 * test-cluster -- core/cluster.c through cluster.h: the local-deadline
 * machine with injected time (fenced before the server can expire the
 * lease, a late answer never moves the deadline back, re-registration),
 * the rendezvous hash's published vectors (README.md and watchpost(8)
 * carry the same table), join_grace and ~1/N movement on a join, slot
 * keys, the wall-clock grid and the manager's gate.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cluster.h"

#define S 1000000LL

/* ---- deadline ---- */

static void
deadline_rule(void **state)
{
	struct cluster_deadline d;

	(void)state;
	cluster_deadline_init(&d, 6 * S);
	assert_int_equal(d.margin_us, 1 * S);   /* max(1 s, 6 s / 6) */
	assert_true(cluster_deadline_fenced(&d, 0)); /* no lease yet */
	/* Grant sent at 10 s, answered (late) at 12 s: deadline 16 s. */
	cluster_deadline_ack(&d, 77, 10 * S, 6);
	assert_false(cluster_deadline_fenced(&d, 12 * S));
	assert_false(cluster_deadline_fenced(&d, 15 * S - 1));
	assert_true(cluster_deadline_fenced(&d, 15 * S)); /* 16 s - 1 s */
	assert_int_equal(cluster_deadline_left(&d, 12 * S), 3 * S);
	assert_int_equal(cluster_deadline_left(&d, 20 * S), 0);
	/* A renewal sent at 12 s resumes it (same lease). */
	cluster_deadline_ack(&d, 77, 12 * S, 6);
	assert_false(cluster_deadline_fenced(&d, 16 * S));
	assert_true(cluster_deadline_fenced(&d, 17 * S));
	/* A late answer to the renewal sent at 11 s: no step back. */
	cluster_deadline_ack(&d, 77, 11 * S, 6);
	assert_false(cluster_deadline_fenced(&d, 16 * S));
	/* A server TTL above ours is not trusted beyond ours. */
	cluster_deadline_ack(&d, 77, 13 * S, 60);
	assert_true(cluster_deadline_fenced(&d, 18 * S));
	/* Lease not found: fenced until a new lease is acknowledged, whose
	 * deadline stands on its own (even if earlier). */
	cluster_deadline_lost(&d);
	assert_true(cluster_deadline_fenced(&d, 14 * S));
	cluster_deadline_ack(&d, 78, 13 * S, 6);
	assert_int_equal(d.lease, 78);
	assert_false(cluster_deadline_fenced(&d, 17 * S));
	/* SIGSTOP for 2 x TTL: on waking the rule alone says fenced. */
	assert_true(cluster_deadline_fenced(&d, 13 * S + 12 * S));
	/* A long TTL: the margin is TTL / 6. */
	cluster_deadline_init(&d, 60 * S);
	assert_int_equal(d.margin_us, 10 * S);
	assert_int_equal(cluster_renew_every(6 * S), 2 * S);
}

/* ---- hash vectors (published) ---- */

static const struct {
	const char *slot, *member;
	uint64_t weight;
} vectors[] = {
	{ "api", "a1", 0xd37abf0f0ff87442ULL },
	{ "api", "a2", 0x17bc119db2621894ULL },
	{ "api", "a3", 0xa88ac4bca59705d9ULL },
	{ "db@fra", "a1", 0xe42e41da562a5a0aULL },
	{ "db@fra", "a2", 0x67263ef8c39bdea0ULL },
	{ "db@fra", "a3", 0xf7244351c6dbad7aULL },
	{ "api@global", "a1", 0x8b3d70d759b92864ULL },
	{ "api@global", "a2", 0xcf3a1ca866acdf23ULL },
	{ "api@global", "a3", 0x69adb50ccf93a32cULL },
	{ "web-1", "a3", 0xc7b5c047c0a45f0dULL },
	{ "web-2", "a1", 0xb69d4df399f3ba63ULL },
};

/* slot, members a1 a2 a3 -> owner */
static const struct {
	const char *slot, *owner;
} owners[] = {
	{ "api", "a1" }, { "db@fra", "a3" }, { "api@global", "a2" },
	{ "web-1", "a3" }, { "web-2", "a1" },
};

static void
hash_vectors(void **state)
{
	struct cluster_member m[3] = { { "a1", "fra", 0 }, { "a2", "fra", 0 },
		{ "a3", "nyc", 0 } };
	size_t i;
	long o;

	(void)state;
	for (i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		assert_true(cluster_hrw_weight(vectors[i].slot,
		    vectors[i].member) == vectors[i].weight);
	for (i = 0; i < sizeof(owners) / sizeof(owners[0]); i++) {
		o = cluster_hrw_owner(owners[i].slot, m, 3, NULL, NULL, 100,
		    0);
		assert_true(o >= 0);
		assert_string_equal(m[o].name, owners[i].owner);
	}
	/* Location candidates: db@fra among fra's members only (a3 is in
	 * nyc): a1 (0xe4...) beats a2. */
	o = cluster_hrw_owner("db@fra", m, 3, "fra", NULL, 100, 0);
	assert_string_equal(m[o].name, "a1");
	assert_int_equal(cluster_hrw_owner("x", m, 3, "sgp", NULL, 100, 0),
	    -1);
	assert_int_equal(cluster_hrw_owner("x", m, 0, NULL, NULL, 100, 0),
	    -1);
}

/* join_grace: a member seen less than the grace ago is not a candidate
 * (unless it is ourselves); once eligible, of 3000 slots about a quarter
 * move, every one of them to the newcomer. */
static void
join_moves_a_quarter(void **state)
{
	struct cluster_member m[4] = { { "a1", NULL, 0 }, { "a2", NULL, 0 },
		{ "a3", NULL, 0 }, { "a4", NULL, 50 * S } };
	char slot[32];
	long before, during, after;
	int i, moved = 0, count[4] = { 0 };

	(void)state;
	for (i = 0; i < 3000; i++) {
		snprintf(slot, sizeof(slot), "mon-%d", i);
		before = cluster_hrw_owner(slot, m, 3, NULL, "a1", 60 * S,
		    10 * S);
		during = cluster_hrw_owner(slot, m, 4, NULL, "a1", 55 * S,
		    10 * S);
		after = cluster_hrw_owner(slot, m, 4, NULL, "a1", 60 * S,
		    10 * S);
		assert_int_equal(before, during); /* a4 still in its grace */
		count[after]++;
		if (after != before) {
			assert_int_equal(after, 3); /* only to the newcomer */
			moved++;
		}
		/* From a4's own view it is eligible at once. */
		if (after == 3)
			assert_int_equal(cluster_hrw_owner(slot, m, 4, NULL,
			    "a4", 55 * S, 10 * S), 3);
	}
	/* 1/4 of 3000 = 750; a fair hash stays well within 600..900. */
	assert_in_range(moved, 600, 900);
	for (i = 0; i < 4; i++)
		assert_in_range(count[i], 600, 900);
	/* A member gone drops out at once: its slots spread over the rest. */
	for (i = 0; i < 300; i++) {
		snprintf(slot, sizeof(slot), "mon-%d", i);
		assert_true(cluster_hrw_owner(slot, m + 1, 3, NULL, "a2",
		    60 * S, 10 * S) >= 0);
	}
}

static void
slot_keys(void **state)
{
	char buf[16];

	(void)state;
	assert_int_equal(cluster_slot_key(buf, sizeof(buf), "api", NULL), 3);
	assert_string_equal(buf, "api");
	assert_int_equal(cluster_slot_key(buf, sizeof(buf), "api", "fra"), 7);
	assert_string_equal(buf, "api@fra");
	cluster_slot_key(buf, sizeof(buf), "api", "@global");
	assert_string_equal(buf, "api@global");
	assert_int_equal(cluster_slot_key(buf, 8, "monitor", "fra"), -1);
}

/* ---- grid ---- */

static void
grid(void **state)
{
	int64_t iv = 10 * S, ph = cluster_grid_phase("api", iv), wall, k,
	    due;

	(void)state;
	assert_int_equal(ph, 66387);  /* published: phase("api", 10 s) */
	assert_true(ph >= 0 && ph < iv);
	/* The same on every agent: index from the wall clock alone. */
	wall = 1700000000 * S + ph + 5 * S;   /* half-way to the next point */
	k = cluster_grid_index("api", iv, wall);
	assert_int_equal(cluster_grid_time("api", iv, k), wall - 5 * S);
	assert_int_equal(cluster_grid_index("api", iv,
	    cluster_grid_time("api", iv, k)), k);
	assert_int_equal(cluster_grid_index("api", iv,
	    cluster_grid_time("api", iv, k) - 1), k - 1);
	/* Steady: the last check was at point k: the next at k + 1, 5 s
	 * from now on the monotonic clock. */
	due = cluster_grid_next("api", iv, wall, 1000, k, &k);
	assert_int_equal(due, 1000 + 5 * S);
	assert_int_equal(k, cluster_grid_index("api", iv, wall) + 1);
	/* Failover: the last check anywhere was two points ago: once, now,
	 * as the current point (not two make-up checks). */
	k = cluster_grid_index("api", iv, wall);
	due = cluster_grid_next("api", iv, wall, 1000, k - 2, &k);
	assert_int_equal(due, 1000);
	assert_int_equal(k, cluster_grid_index("api", iv, wall));
	/* Unknown history: wait for the next point. */
	due = cluster_grid_next("api", iv, wall, 1000, -1, &k);
	assert_int_equal(due, 1000 + 5 * S);
	/* Before the epoch's phase the index is negative, floor division. */
	assert_int_equal(cluster_grid_index("api", iv, 0), -1);
}

/* ---- hooks ---- */

static const char *refused;
static int n_checked;

static int
gate(const char *monitor)
{
	return strcmp(monitor, refused) != 0;
}

static void
checked(const char *monitor, const struct policy_state *ps,
    const struct store_alert *rows, size_t n)
{
	(void)monitor;
	(void)ps;
	(void)rows;
	(void)n;
	n_checked++;
}

static void
may_start(void **state)
{
	static const struct cluster_hooks h = { gate, gate, checked };

	(void)state;
	/* Without [cluster]: a single machine's answers. */
	assert_true(cluster_may_start("any"));
	assert_true(cluster_alerts_here("any"));
	cluster_checked("any", NULL, NULL, 0);
	assert_int_equal(n_checked, 0);
	refused = "b";
	cluster_set_hooks(&h);
	assert_true(cluster_may_start("a"));
	assert_false(cluster_may_start("b"));
	assert_false(cluster_alerts_here("b"));
	cluster_checked("a", NULL, NULL, 0);
	assert_int_equal(n_checked, 1);
	cluster_set_hooks(NULL);
	assert_true(cluster_may_start("b"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(deadline_rule),
		cmocka_unit_test(hash_vectors),
		cmocka_unit_test(join_moves_a_quarter),
		cmocka_unit_test(slot_keys),
		cmocka_unit_test(grid),
		cmocka_unit_test(may_start),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
