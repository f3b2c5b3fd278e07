/*
 * test-ping -- the ping check plugin with each ICMP method that works here
 * (dgram, raw, exec), on loopback and in a private network namespace (see
 * test-tcp-ping-netns.h).  Nothing leaves the box.
 *
 * The exec method is tested twice: with the system ping(8) if it is
 * installed (iputils-ping), and always with a stand-in `ping` script the
 * test writes to a temporary directory put first on PATH, which exercises
 * the spawn, output, reaping and kill-at-deadline paths.
 */
#include "config.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <cmocka.h>

#include "diag.h"
#include "keys.h"
#include "mockhost.h"
#include "../plugins/ping-verdict.h"
#include "test-tcp-ping-netns.h"

static int in_netns;
static char netns_why[256];
static char fake_dir[256];     /* holds the stand-in ping */
static char *orig_path;

struct method {
	const char *name;      /* WP_PING_METHOD value */
	int fake;              /* exec with the stand-in ping */
};

static const struct method m_dgram = { "dgram", 0 };
static const struct method m_raw = { "raw", 0 };
static const struct method m_exec = { "exec", 0 };
static const struct method m_fake = { "exec", 1 };

/* The stand-in: answers loopback, never answers TEST-NET-1 (it sleeps until
 * killed), reports TEST-NET-2 unreachable, like iputils ping -c 1.  With
 * -c N (N > 1) it prints what iputils prints for N echoes: every one
 * answered on loopback (RTTs 1, 2, ... ms), none on TEST-NET-1, TEST-NET-2
 * unreachable, and
 * on TEST-NET-3 the odd-numbered ones only: a deterministic partial loss. */
static const char fake_script[] =
    "#!/bin/sh\n"
    "n=1; prev=\n"
    "for a; do [ \"$prev\" = -c ] && n=$a; prev=$a; addr=$a; done\n"
    "if [ \"$n\" -gt 1 ]; then\n"
    "  echo \"PING $addr 56 data bytes\"\n"
    "  i=1; got=0\n"
    "  while [ $i -le $n ]; do\n"
    "    case $addr in\n"
    "    127.*|::1) echo \"64 bytes from $addr: icmp_seq=$i ttl=64 "
    "time=$i.0 ms\"; got=$((got + 1)) ;;\n"
    "    198.51.100.*) echo \"From $addr icmp_seq=$i Destination Host "
    "Unreachable\" ;;\n"
    "    203.0.113.*) if [ $((i % 2)) = 1 ]; then echo \"64 bytes from "
    "$addr: icmp_seq=$i ttl=64 time=1.$i ms\"; got=$((got + 1)); fi ;;\n"
    "    esac\n"
    "    i=$((i + 1))\n"
    "  done\n"
    "  echo \"--- $addr ping statistics ---\"\n"
    "  echo \"$n packets transmitted, $got received, time 1ms\"\n"
    "  [ $got -gt 0 ] && exit 0\n"
    "  exit 1\n"
    "fi\n"
    "case $addr in\n"
    "127.*|::1) echo \"PING $addr 56 data bytes\"\n"
    "  echo \"64 bytes from $addr: icmp_seq=1 ttl=64 time=0.25 ms\"\n"
    "  exit 0 ;;\n"
    "192.0.2.*) exec sleep 30 ;;\n"
    "198.51.100.*) echo \"From $addr icmp_seq=1 Destination Host "
    "Unreachable\"\n"
    "  exit 1 ;;\n"
    "esac\n"
    "echo \"ping: $addr: unexpected\" >&2\n"
    "exit 2\n";

static int
can_socket(int fam, int type)
{
	int fd = socket(fam, type, fam == AF_INET ? IPPROTO_ICMP :
	    IPPROTO_ICMPV6);

	if (fd < 0)
		return 0;
	close(fd);
	return 1;
}

static int
have_system_ping(void)
{
	static const char *const dirs[] = { "/usr/bin", "/bin", "/usr/sbin",
	    "/sbin" };
	char p[64];
	size_t i;

	for (i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(p, sizeof(p), "%s/ping", dirs[i]);
		if (access(p, X_OK) == 0)
			return 1;
	}
	return 0;
}

/* Skip the calling test unless method M works for family FAM here; then set
 * the environment so the plugin's init() picks exactly M. */
static void
use_method(const struct method *m, int fam)
{
	char path[4096];

	if (strcmp(m->name, "dgram") == 0 && !can_socket(fam, SOCK_DGRAM)) {
		print_message("skipped: no ICMP datagram socket for %s (%s)\n",
		    fam == AF_INET ? "IPv4" : "IPv6", strerror(errno));
		skip();
	}
	if (strcmp(m->name, "raw") == 0 && !can_socket(fam, SOCK_RAW)) {
		print_message("skipped: no raw ICMP socket for %s (%s)\n",
		    fam == AF_INET ? "IPv4" : "IPv6", strerror(errno));
		skip();
	}
	if (fam == AF_INET6 && !can_socket(AF_INET6, SOCK_DGRAM) &&
	    !can_socket(AF_INET6, SOCK_RAW) && errno == EAFNOSUPPORT) {
		print_message("skipped: no IPv6 here\n");
		skip();
	}
	if (m->fake) {
		snprintf(path, sizeof(path), "%s:%s", fake_dir, orig_path);
		setenv("PATH", path, 1);
	} else {
		setenv("PATH", orig_path, 1);
		if (strcmp(m->name, "exec") == 0 && !have_system_ping()) {
			print_message("skipped: ping(8) is not installed "
			    "(Debian package iputils-ping)\n");
			skip();
		}
	}
	setenv("WP_PING_METHOD", m->name, 1);
}

/* No child of ours may be left unreaped after the plugin is unloaded. */
static void
assert_no_children(void)
{
	int status;

	assert_int_equal(waitpid(-1, &status, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
}

static void
run_ping(const char *host, int64_t timeout_ms, struct mock_result *res)
{
	struct mock_plugin *mp = mock_plugin_load("ping.so");
	const char *kv[] = { "host", host, NULL };
	void *inst = NULL;

	assert_int_equal(mock_configure(mp, "p", kv, timeout_ms, &inst), 0);
	assert_non_null(inst);
	mock_run(mp, inst, timeout_ms, NULL, res);
	mock_release(mp, inst);
	mock_plugin_unload(mp);
	assert_no_children();
	assert_int_equal(res->start_rc, 0);
	assert_int_equal(res->completions, 1);
}

static void
expect_up(const char *host)
{
	struct mock_result res;

	run_ping(host, 3000, &res);
	if (res.r.reason != WP_REASON_OK)
		fail_msg("ping %s: reason %d: %s", host, res.r.reason,
		    res.r.detail ? res.r.detail : "");
	assert_int_equal(res.r.reason, WP_REASON_OK);
	assert_int_equal(res.timed_out, 0);
	assert_true(res.r.latency_us > 0);
	assert_true(res.r.latency_us < 3000000);
	assert_null(res.r.detail);
	/* One echo, answered: its rtt in seconds and no loss. */
	assert_int_equal(res.r.n_measurements, 2);
	assert_string_equal(res.r.measurements[0].name, "rtt");
	assert_int_equal(res.r.measurements[0].unit, WP_UNIT_SECONDS);
	assert_true(res.r.measurements[0].value ==
	    (double)res.r.latency_us / 1e6);
	assert_string_equal(res.r.measurements[1].name, "loss");
	assert_int_equal(res.r.measurements[1].unit, WP_UNIT_RATIO);
	assert_true(res.r.measurements[1].value == 0.0);
}

static void
test_up_v4(void **state)
{
	use_method(*state, AF_INET);
	expect_up("127.0.0.1");
}

static void
test_up_v6(void **state)
{
	use_method(*state, AF_INET6);
	expect_up("::1");
}

static void
test_up_name(void **state)
{
	use_method(*state, AF_INET);
	if (!localhost_resolves()) {
		print_message("skipped: this machine cannot resolve localhost "
		    "(no /etc/hosts)\n");
		skip();
	}
	expect_up("localhost");
}

static void
test_timeout(void **state)
{
	struct mock_result res;

	use_method(*state, AF_INET);
	if (!in_netns) {
		print_message("skipped: no private network namespace (%s)\n",
		    netns_why);
		skip();
	}
	run_ping(NETNS_SILENT, 300, &res);
	assert_int_equal(res.timed_out, 1);
	assert_int_not_equal(res.r.reason, WP_REASON_OK);
	assert_int_equal(res.r.reason, WP_REASON_TIMEOUT);
	assert_non_null(res.r.detail);
	assert_string_equal(res.r.detail, "no echo reply within 0.3s");
	assert_true(res.elapsed_ms >= 290.0);
	assert_true(res.elapsed_ms < 900.0);
}

static void
test_unreachable(void **state)
{
	struct mock_result res;

	use_method(*state, AF_INET);
	if (!in_netns) {
		print_message("skipped: no private network namespace (%s)\n",
		    netns_why);
		skip();
	}
	run_ping(NETNS_UNREACH, 3000, &res);
	assert_int_equal(res.timed_out, 0);
	assert_int_not_equal(res.r.reason, WP_REASON_OK);
	assert_int_equal(res.r.reason, WP_REASON_UNREACHABLE);
	assert_non_null(res.r.detail);
}

/* --- many requests in flight on one socket ------------------------------ */

#define N_CONC 50

struct wp_op {
	int completions;
	int ok;
	int reason;
	int64_t latency_us;
	char detail[WP_DETAIL_MAX];
	struct wp_measurement m[WP_MEASUREMENTS_MAX];
};

static void
count_complete(struct wp_op *op, const struct wp_result *res)
{
	op->completions++;
	op->ok = res->reason == WP_REASON_OK;
	op->reason = res->reason;
	op->latency_us = res->latency_us;
}

static void
refuse_config_error(const struct wp_section *sec, const char *key,
    const char *fmt, ...)
{
	(void)sec;
	(void)key;
	fail_msg("unexpected configuration error: %s", fmt);
}

/* The conf the host builds for "host = NAME", by the host's own parser;
 * keys_free() it after the instance's release(). */
static void *
host_conf(const struct wp_plugin *d, const char *name)
{
	struct cfg_kv kv = { "host", name, 1 };
	struct wp_diag diag;
	void *conf;

	diag_init(&diag, "mock.ini");
	conf = keys_fill(d->keys, d->n_keys, d->key_size, d->conf_size,
	    "mock.ini", ".", &kv, 1, &diag);
	diag_free(&diag);
	assert_non_null(conf);
	return conf;
}

/* A request for OP, with its buffers in OP. */
static struct wp_request
op_request(struct wp_op *op, const char *name, int64_t now, int64_t us)
{
	return (struct wp_request){ .size = sizeof(struct wp_request),
	    .op = op, .monitor = name, .started_us = now,
	    .deadline_us = now + us, .detail = op->detail,
	    .detail_size = sizeof(op->detail), .measurements = op->m,
	    .max_measurements = WP_MEASUREMENTS_MAX };
}

/*
 * N_CONC pings started at once through one plugin state (so one socket per
 * family), to 127.0.0.1-127.0.0.25 and ::1 (when the method has IPv6),
 * completed by our own counting complete(): each must complete exactly once,
 * up.  The plugin gets our copy of the mock's host table from init().
 */
static void
test_concurrent(void **state)
{
	const struct method *m = *state;
	struct mock_plugin *mp;
	const struct wp_plugin *d;
	struct wp_host host;
	struct wp_op ops[N_CONC];
	struct wp_request req[N_CONC];
	void *inst[N_CONC], *opst[N_CONC], *conf[N_CONC];
	char hosts[N_CONC][32];
	struct wp_section sec;
	void *pst = NULL;
	int i, done = 0, rounds, v6;
	int64_t now;

	use_method(m, AF_INET);
	v6 = strcmp(m->name, "dgram") == 0 ? can_socket(AF_INET6, SOCK_DGRAM) :
	    can_socket(AF_INET6, SOCK_RAW);
	mp = mock_plugin_load("ping.so");
	d = mock_plugin_desc(mp);
	host = *mock_host(mp);
	host.complete = count_complete;
	host.config_error = refuse_config_error;
	assert_int_equal(d->init(&host, &pst), 0);

	memset(ops, 0, sizeof(ops));
	now = host.now_us();
	for (i = 0; i < N_CONC; i++) {
		if (v6 && i % 2 == 1)
			snprintf(hosts[i], sizeof(hosts[i]), "::1");
		else
			snprintf(hosts[i], sizeof(hosts[i]), "127.0.0.%d",
			    1 + i / 2);
		conf[i] = host_conf(d, hosts[i]);
		sec = (struct wp_section){ sizeof(sec), "c", "mock.ini", 0,
		    5000000, NULL, 0 };
		assert_int_equal(d->configure(pst, &sec, conf[i], &inst[i]),
		    0);
		req[i] = op_request(&ops[i], "c", now, 5000000);
	}
	for (i = 0; i < N_CONC; i++)
		assert_int_equal(d->start(inst[i], &req[i], &opst[i]), 0);
	for (rounds = 0; rounds < 500 && done < N_CONC; rounds++) {
		mock_spin(mp, 10);
		for (done = 0, i = 0; i < N_CONC; i++)
			done += ops[i].completions > 0;
	}
	/* anything still out is cancelled, as the host would at the deadline */
	for (i = 0; i < N_CONC; i++)
		if (ops[i].completions == 0)
			d->cancel(inst[i], opst[i]);
	mock_spin(mp, 50);
	for (i = 0; i < N_CONC; i++) {
		if (ops[i].completions != 1 || ops[i].ok != 1)
			fail_msg("ping %d (%s): %d completions, ok %d, "
			    "reason %d", i, hosts[i], ops[i].completions,
			    ops[i].ok, ops[i].reason);
		assert_true(ops[i].latency_us > 0);
	}
	for (i = 0; i < N_CONC; i++) {
		d->release(pst, inst[i]);
		keys_free(conf[i]);
	}
	d->fini(pst);
	mock_plugin_unload(mp);
	assert_no_children();
}

/* --- ICMP errors ---------------------------------------------------------- */

static int
set_echo_ignore(const char *v)
{
	FILE *f = fopen("/proc/sys/net/ipv4/icmp_echo_ignore_all", "w");

	if (f == NULL)
		return -1;
	fputs(v, f);
	return fclose(f);
}

static uint16_t
csum(const uint8_t *p, size_t n)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		sum += (uint32_t)(p[n - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/*
 * In our namespace, with the kernel's echo replies switched off, ping
 * 127.0.0.2; a raw socket of the test's sees the request go by and answers
 * with a forged "host unreachable" quoting it.  The plugin must match the
 * error to the request (raw: on the socket; dgram: on the error queue) and
 * complete once with WP_REASON_UNREACHABLE before the deadline.
 */
static void
test_icmp_error(void **state)
{
	const struct method *m = *state;
	struct mock_plugin *mp;
	const struct wp_plugin *d;
	struct wp_host host;
	struct wp_op op;
	struct wp_request req;
	struct wp_section sec = { sizeof(sec), "e", "mock.ini", 0, 3000000,
	    NULL, 0 };
	struct sockaddr_in to;
	uint8_t buf[1500], err[8 + 60 + 8];
	void *pst = NULL, *inst = NULL, *opst = NULL, *conf;
	int sniff, rounds, forged = 0;
	size_t hl;
	ssize_t n;
	uint16_t c;
	int64_t now;

	use_method(m, AF_INET);
	if (!in_netns) {
		print_message("skipped: no private network namespace (%s)\n",
		    netns_why);
		skip();
	}
	sniff = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_ICMP);
	if (sniff < 0) {
		print_message("skipped: the test needs a raw socket (%s)\n",
		    strerror(errno));
		skip();
	}
	assert_int_equal(set_echo_ignore("1"), 0);
	mp = mock_plugin_load("ping.so");
	d = mock_plugin_desc(mp);
	host = *mock_host(mp);
	host.complete = count_complete;
	host.config_error = refuse_config_error;
	assert_int_equal(d->init(&host, &pst), 0);
	conf = host_conf(d, "127.0.0.2");
	assert_int_equal(d->configure(pst, &sec, conf, &inst), 0);
	memset(&op, 0, sizeof(op));
	now = host.now_us();
	req = op_request(&op, "e", now, 3000000);
	assert_int_equal(d->start(inst, &req, &opst), 0);
	for (rounds = 0; rounds < 300 && op.completions == 0; rounds++) {
		mock_spin(mp, 5);
		while (!forged && (n = recv(sniff, buf, sizeof(buf), 0)) > 0) {
			hl = (size_t)(buf[0] & 0x0f) * 4;
			if ((size_t)n < hl + 8 || buf[hl] != 8 ||
			    memcmp(buf + 16, "\x7f\0\0\x02", 4) != 0)
				continue;
			memset(err, 0, sizeof(err));
			err[0] = 3; /* destination unreachable */
			err[1] = 1; /* host unreachable */
			memcpy(err + 8, buf, hl + 8);
			c = csum(err, 8 + hl + 8);
			err[2] = (uint8_t)(c >> 8);
			err[3] = (uint8_t)c;
			memset(&to, 0, sizeof(to));
			to.sin_family = AF_INET;
			to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			assert_true(sendto(sniff, err, 8 + hl + 8, 0,
			    (struct sockaddr *)&to, sizeof(to)) > 0);
			forged = 1;
		}
	}
	if (op.completions == 0)
		d->cancel(inst, opst);
	mock_spin(mp, 50);
	d->release(pst, inst);
	keys_free(conf);
	d->fini(pst);
	mock_plugin_unload(mp);
	close(sniff);
	assert_int_equal(set_echo_ignore("0"), 0);
	assert_true(forged);
	assert_int_equal(op.completions, 1);
	assert_int_equal(op.ok, 0);
	assert_int_equal(op.reason, WP_REASON_UNREACHABLE);
}

/* --- configuration and method selection --------------------------------- */

static void
test_config(void **unused)
{
	static const char *const none[] = { NULL };
	static const char *const empty[] = { "host", "", NULL };
	static const char *const good[] = { "host", "gateway.invalid", NULL };
	struct mock_plugin *mp;
	const struct wp_plugin *d;
	void *inst = NULL;

	(void)unused;
	unsetenv("WP_PING_METHOD");
	setenv("PATH", orig_path, 1);
	mp = mock_plugin_load("ping.so");
	d = mock_plugin_desc(mp);
	assert_string_equal(d->name, "ping");
	assert_int_equal(d->kind, WP_PLUGIN_CHECK);
	assert_string_equal(d->keys[0].name, "host");
	assert_true(d->keys[0].flags & WP_KEY_REQUIRED);
	assert_int_equal(d->n_keys, 5);
	assert_string_equal(d->keys[1].name, "count");
	assert_string_equal(d->keys[2].name, "packet_interval");
	assert_string_equal(d->keys[3].name, "loss_warn");
	assert_string_equal(d->keys[4].name, "loss_max");

	/* The host's key parser reports these, before configure(). */
	assert_int_equal(mock_configure(mp, "p", none, 1000, &inst), WP_EINVAL);
	assert_string_equal(mock_errors(mp), "mock.ini: the section is missing "
	    "the required key \"host\"\n");
	assert_int_equal(mock_configure(mp, "p", empty, 1000, &inst),
	    WP_EINVAL);
	assert_string_equal(mock_errors(mp), "mock.ini:1: host: no value\n");
	assert_int_equal(mock_configure(mp, "p", good, 1000, &inst), 0);
	assert_non_null(inst);
	mock_release(mp, inst);
	mock_plugin_unload(mp);
}

static void
test_bad_method(void **unused)
{
	struct mock_plugin *mp;
	struct wp_host host;
	void *pst = NULL;

	(void)unused;
	unsetenv("WP_PING_METHOD");
	mp = mock_plugin_load("ping.so");
	host = *mock_host(mp);
	setenv("WP_PING_METHOD", "carrier-pigeon", 1);
	assert_int_equal(mock_plugin_desc(mp)->init(&host, &pst), WP_EINVAL);
	assert_null(pst);
	/* exec with no ping anywhere on PATH: nothing to fall back to */
	setenv("WP_PING_METHOD", "exec", 1);
	setenv("PATH", "/nonexistent", 1);
	assert_int_equal(mock_plugin_desc(mp)->init(&host, &pst), WP_ENOTSUP);
	assert_null(pst);
	setenv("PATH", orig_path, 1);
	unsetenv("WP_PING_METHOD");
	mock_plugin_unload(mp);
}

/* --- count > 1: several echoes per check ------------------------------- */

/* Run one check of "host = HOST, count = COUNT, packet_interval = IVAL"
 * plus the key/value pairs in EXTRA (NULL-terminated, or NULL). */
static void
run_count(const char *host, const char *count, const char *ival,
    const char *const *extra, int64_t timeout_ms, struct mock_result *res)
{
	struct mock_plugin *mp = mock_plugin_load("ping.so");
	const char *kv[16] = { "host", host, "count", count,
	    "packet_interval", ival };
	size_t n = 6, i;
	void *inst = NULL;

	for (i = 0; extra != NULL && extra[i] != NULL; i++)
		kv[n++] = extra[i];
	kv[n] = NULL;
	if (mock_configure(mp, "p", kv, timeout_ms, &inst) != 0)
		fail_msg("configure: %s", mock_errors(mp));
	mock_run(mp, inst, timeout_ms, NULL, res);
	mock_release(mp, inst);
	mock_plugin_unload(mp);
	assert_no_children();
	assert_int_equal(res->start_rc, 0);
	assert_int_equal(res->completions, 1);
}

/* The measurement NAME of RES, which must be there. */
static double
meas(const struct mock_result *res, const char *name)
{
	size_t i;

	for (i = 0; i < res->r.n_measurements; i++)
		if (strcmp(res->r.measurements[i].name, name) == 0)
			return res->r.measurements[i].value;
	fail_msg("no measurement %s", name);
	return -1;
}

/* The exec method needs packet_interval >= 200ms. */
static const char *
ival_for(const struct method *m)
{
	return strcmp(m->name, "exec") == 0 ? "200ms" : "10ms";
}

static void
test_count_up(void **state)
{
	const struct method *m = *state;
	struct mock_result res;

	use_method(m, AF_INET);
	run_count("127.0.0.1", "5", ival_for(m), NULL, 5000, &res);
	if (res.r.reason != WP_REASON_OK)
		fail_msg("reason %d: %s", res.r.reason,
		    res.r.detail ? res.r.detail : "");
	assert_int_equal(res.timed_out, 0);
	assert_null(res.r.detail);
	assert_int_equal(res.r.n_measurements, 6);
	assert_true(meas(&res, "loss") == 0.0);
	assert_int_equal(res.r.measurements[0].unit, WP_UNIT_RATIO);
	assert_true(meas(&res, "rtt_min") > 0);
	assert_true(meas(&res, "rtt_min") <= meas(&res, "rtt_avg"));
	assert_true(meas(&res, "rtt_avg") <= meas(&res, "rtt_max"));
	assert_true(meas(&res, "rtt") == meas(&res, "rtt_avg"));
	assert_true(meas(&res, "jitter") >= 0);
	assert_true(meas(&res, "jitter") <= meas(&res, "rtt_max") -
	    meas(&res, "rtt_min"));
	assert_true(res.r.latency_us > 0);
	assert_true((double)res.r.latency_us / 1e6 == meas(&res, "rtt_avg"));
	if (m->fake) {
		/* the stand-in's RTTs: 1, 2, ... 5 ms */
		assert_true(meas(&res, "rtt_min") == 0.001);
		assert_true(meas(&res, "rtt_max") == 0.005);
		assert_true(meas(&res, "rtt_avg") == 0.003);
		assert_true(meas(&res, "jitter") == 0.001);
	}
}

static void
test_count_blackhole(void **state)
{
	const struct method *m = *state;
	struct mock_result res;

	use_method(m, AF_INET);
	if (!in_netns) {
		print_message("skipped: no private network namespace (%s)\n",
		    netns_why);
		skip();
	}
	run_count(NETNS_SILENT, "3", ival_for(m), NULL, 3000, &res);
	/* concluded by the plugin before the deadline */
	assert_int_equal(res.timed_out, 0);
	assert_int_equal(res.r.reason, WP_REASON_TIMEOUT);
	assert_non_null(res.r.detail);
	assert_string_equal(res.r.detail, "no echo reply to 3 requests");
	assert_int_equal(res.r.n_measurements, 1);
	assert_true(meas(&res, "loss") == 1.0);
	assert_true(res.r.latency_us < 0);
}

static void
test_count_unreachable(void **state)
{
	const struct method *m = *state;
	struct mock_result res;

	use_method(m, AF_INET);
	if (!in_netns) {
		print_message("skipped: no private network namespace (%s)\n",
		    netns_why);
		skip();
	}
	run_count(NETNS_UNREACH, "3", ival_for(m), NULL, 3000, &res);
	assert_int_equal(res.timed_out, 0);
	assert_int_equal(res.r.reason, WP_REASON_UNREACHABLE);
	assert_non_null(res.r.detail);
	assert_non_null(strstr(res.r.detail, NETNS_UNREACH));
	assert_true(meas(&res, "loss") == 1.0);
}

/* Partial loss, deterministic: the stand-in ping answers 2 of 4. */
static void
test_count_partial(void **state)
{
	static const char *const down[] = { "loss_max", "50%", NULL };
	static const char *const warn[] = { "loss_warn", "0.25", "loss_max",
	    "75%", NULL };
	static const char *const fine[] = { "loss_warn", "60%", NULL };
	struct mock_result res;

	use_method(*state, AF_INET);
	run_count("203.0.113.1", "4", "200ms", down, 5000, &res);
	assert_int_equal(res.r.reason, WP_REASON_CHECK);
	assert_string_equal(res.r.detail,
	    "loss 50% (2 of 4 lost), limit 50%");
	assert_true(meas(&res, "loss") == 0.5);
	assert_true(meas(&res, "rtt_min") == 0.0011);
	assert_true(meas(&res, "rtt_max") == 0.0013);
	assert_true(meas(&res, "jitter") == 0.0002);

	run_count("203.0.113.1", "4", "200ms", warn, 5000, &res);
	assert_int_equal(res.r.reason, WP_REASON_WARNING);
	assert_string_equal(res.r.detail,
	    "loss 50% (2 of 4 lost), warning at 25%");

	/* the defaults: up while anything comes back */
	run_count("203.0.113.1", "4", "200ms", fine, 5000, &res);
	assert_int_equal(res.r.reason, WP_REASON_OK);
	assert_null(res.r.detail);
	assert_true(meas(&res, "loss") == 0.5);
}

/* The verdict, the ratios and jitter on synthetic inputs. */
static void
test_verdict(void **unused)
{
	char msg[256];
	double v;
	const int64_t rtt[] = { 100, -1, 300, 200, -1 };
	const int64_t one[] = { 100, -1 };

	(void)unused;
	assert_int_equal(ping_ratio_parse("20%", &v), 0);
	assert_true(v == 0.2);
	assert_int_equal(ping_ratio_parse("0.2", &v), 0);
	assert_true(v == 0.2);
	assert_int_equal(ping_ratio_parse("100%", &v), 0);
	assert_true(v == 1.0);
	assert_int_equal(ping_ratio_parse("1", &v), 0);
	assert_int_equal(ping_ratio_parse("", &v), -1);
	assert_int_equal(ping_ratio_parse("20", &v), -1);
	assert_int_equal(ping_ratio_parse("101%", &v), -1);
	assert_int_equal(ping_ratio_parse("-0.1", &v), -1);
	assert_int_equal(ping_ratio_parse("20 %", &v), -1);
	assert_int_equal(ping_ratio_parse("0.2x", &v), -1);
	assert_int_equal(ping_ratio_parse("nan", &v), -1);

	/* defaults: warn never, max 100% */
	assert_int_equal(ping_verdict(5, 5, 0, -1, 1, msg, sizeof(msg)),
	    WP_REASON_OK);
	assert_int_equal(ping_verdict(5, 1, 0, -1, 1, msg, sizeof(msg)),
	    WP_REASON_OK);
	assert_int_equal(ping_verdict(5, 0, 0, -1, 1, msg, sizeof(msg)),
	    WP_REASON_TIMEOUT);
	assert_string_equal(msg, "no echo reply to 5 requests");
	strcpy(msg, "kept");
	assert_int_equal(ping_verdict(5, 0, WP_REASON_UNREACHABLE, -1, 1, msg,
	    sizeof(msg)), WP_REASON_UNREACHABLE);
	assert_string_equal(msg, "kept");
	/* an error among answers is only a lost echo */
	assert_int_equal(ping_verdict(5, 4, WP_REASON_UNREACHABLE, -1, 1, msg,
	    sizeof(msg)), WP_REASON_OK);
	/* limits are inclusive */
	assert_int_equal(ping_verdict(5, 3, 0, 0.2, 0.4, msg, sizeof(msg)),
	    WP_REASON_CHECK);
	assert_string_equal(msg, "loss 40% (2 of 5 lost), limit 40%");
	assert_int_equal(ping_verdict(5, 4, 0, 0.2, 0.4, msg, sizeof(msg)),
	    WP_REASON_WARNING);
	assert_string_equal(msg, "loss 20% (1 of 5 lost), warning at 20%");
	assert_int_equal(ping_verdict(10, 9, 0, 0.2, 0.4, msg, sizeof(msg)),
	    WP_REASON_OK);
	assert_int_equal(ping_verdict(3, 2, 0, 0.3, 1, msg, sizeof(msg)),
	    WP_REASON_WARNING);
	assert_string_equal(msg, "loss 33.3% (1 of 3 lost), warning at 30%");

	assert_int_equal(ping_jitter(rtt, 5), 150); /* |300-100|, |200-300| */
	assert_int_equal(ping_jitter(one, 2), 0);
	assert_int_equal(ping_jitter(rtt, 0), 0);
}

/* configure()'s own errors, as FILE:LINE: KEY: message. */
static void
test_count_config(void **unused)
{
	static const char *const badwarn[] = { "host", "127.0.0.1",
	    "loss_warn", "twenty", NULL };
	static const char *const badmax[] = { "host", "127.0.0.1",
	    "loss_max", "0", NULL };
	static const char *const order[] = { "host", "127.0.0.1",
	    "loss_warn", "50%", "loss_max", "0.5", NULL };
	static const char *const toolong[] = { "host", "127.0.0.1",
	    "count", "10", "packet_interval", "200ms", NULL };
	static const char *const toomany[] = { "host", "127.0.0.1",
	    "count", "101", NULL };
	static const char *const tooshort[] = { "host", "127.0.0.1",
	    "count", "3", "packet_interval", "5ms", NULL };
	static const char *const fast[] = { "host", "127.0.0.1",
	    "count", "3", "packet_interval", "10ms", NULL };
	struct mock_plugin *mp;
	void *inst = NULL;

	(void)unused;
	unsetenv("WP_PING_METHOD");
	setenv("PATH", orig_path, 1);
	mp = mock_plugin_load("ping.so");
	assert_int_equal(mock_configure(mp, "p", badwarn, 1000, &inst),
	    WP_EINVAL);
	assert_string_equal(mock_errors(mp), "mock.ini:2: loss_warn: "
	    "\"twenty\" is not a loss ratio above 0 (\"20%\" or \"0.2\")\n");
	assert_int_equal(mock_configure(mp, "p", badmax, 1000, &inst),
	    WP_EINVAL);
	assert_string_equal(mock_errors(mp), "mock.ini:2: loss_max: "
	    "\"0\" is not a loss ratio above 0 (\"50%\" or \"0.5\")\n");
	assert_int_equal(mock_configure(mp, "p", order, 1000, &inst),
	    WP_EINVAL);
	assert_string_equal(mock_errors(mp), "mock.ini:2: loss_warn: "
	    "must be below loss_max (0.5 >= 0.5)\n");
	assert_int_equal(mock_configure(mp, "p", toolong, 1000, &inst),
	    WP_EINVAL);
	assert_string_equal(mock_errors(mp), "mock.ini:2: count: 10 echo "
	    "requests 0.2s apart take 2s, which does not fit in the "
	    "monitor's timeout (1s): lower count or packet_interval, or "
	    "raise timeout\n");
	assert_int_equal(mock_configure(mp, "p", toomany, 1000, &inst),
	    WP_EINVAL);
	assert_non_null(strstr(mock_errors(mp), "mock.ini:2: "));
	assert_int_equal(mock_configure(mp, "p", tooshort, 1000, &inst),
	    WP_EINVAL);
	assert_non_null(strstr(mock_errors(mp), "mock.ini:3: "));
	mock_plugin_unload(mp);

	/* ping(8) cannot go below 200ms for a user */
	setenv("WP_PING_METHOD", "exec", 1);
	mp = mock_plugin_load("ping.so");
	assert_int_equal(mock_configure(mp, "p", fast, 1000, &inst),
	    WP_EINVAL);
	assert_string_equal(mock_errors(mp), "mock.ini:3: packet_interval: "
	    "must be at least 200ms here: echo requests are sent by ping(8), "
	    "which refuses shorter intervals to users other than root\n");
	mock_plugin_unload(mp);
	unsetenv("WP_PING_METHOD");
}

static int
write_fake_ping(void)
{
	const char *base = getenv("abs_top_builddir");
	char file[512];
	FILE *f;

	snprintf(fake_dir, sizeof(fake_dir), "%s/tests/test-ping-bin.XXXXXX",
	    base ? base : "/tmp");
	if (mkdtemp(fake_dir) == NULL) {
		snprintf(fake_dir, sizeof(fake_dir), "/tmp/test-ping-bin.XXXXXX");
		if (mkdtemp(fake_dir) == NULL)
			return -1;
	}
	snprintf(file, sizeof(file), "%s/ping", fake_dir);
	f = fopen(file, "w");
	if (f == NULL)
		return -1;
	fputs(fake_script, f);
	if (fclose(f) != 0 || chmod(file, 0755) != 0)
		return -1;
	return 0;
}

static void
remove_fake_ping(void)
{
	char file[512];

	snprintf(file, sizeof(file), "%s/ping", fake_dir);
	unlink(file);
	rmdir(fake_dir);
}

#define METHOD_TESTS(m)                                                      \
	cmocka_unit_test_prestate(test_up_v4, (void *)&(m)),                  \
	cmocka_unit_test_prestate(test_up_v6, (void *)&(m)),                  \
	cmocka_unit_test_prestate(test_up_name, (void *)&(m)),                \
	cmocka_unit_test_prestate(test_timeout, (void *)&(m)),                \
	cmocka_unit_test_prestate(test_unreachable, (void *)&(m)),            \
	cmocka_unit_test_prestate(test_count_up, (void *)&(m)),               \
	cmocka_unit_test_prestate(test_count_blackhole, (void *)&(m)),        \
	cmocka_unit_test_prestate(test_count_unreachable, (void *)&(m))

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_bad_method),
		cmocka_unit_test(test_verdict),
		cmocka_unit_test(test_count_config),
		cmocka_unit_test_prestate(test_count_partial, (void *)&m_fake),
		METHOD_TESTS(m_dgram),
		cmocka_unit_test_prestate(test_concurrent, (void *)&m_dgram),
		cmocka_unit_test_prestate(test_icmp_error, (void *)&m_dgram),
		METHOD_TESTS(m_raw),
		cmocka_unit_test_prestate(test_concurrent, (void *)&m_raw),
		cmocka_unit_test_prestate(test_icmp_error, (void *)&m_raw),
		METHOD_TESTS(m_exec),
		METHOD_TESTS(m_fake),
	};
	const char *p = getenv("PATH");
	int rc;

	in_netns = netns_enter(netns_why, sizeof(netns_why));
	if (!in_netns)
		fprintf(stderr, "test-ping: no private network namespace (%s); "
		    "the tests that need one are skipped\n", netns_why);
	orig_path = strdup(p ? p : "/usr/bin:/bin");
	if (orig_path == NULL || write_fake_ping() != 0) {
		fprintf(stderr, "test-ping: cannot write the stand-in ping\n");
		return 1;
	}
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	remove_fake_ping();
	free(orig_path);
	return rc;
}
