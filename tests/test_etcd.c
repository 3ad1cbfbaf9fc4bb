/* rtci_etcd against a real etcd (tests/with_etcd.sh starts one; RTCI_ETCD_ENDPOINTS). */
#include "cluster/etcd.h"
#include "common/clock.h"
#include "common/rtci_error.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct rtci_etcd *e;
static const char *endpoints;

static void setup(void)
{
	endpoints = getenv("RTCI_ETCD_ENDPOINTS");
	cr_assert_not_null(endpoints, "run through tests/with_etcd.sh");
	cr_assert_eq(rtci_etcd_create(endpoints, 2000, &e), 0);
}

static void teardown(void)
{
	rtci_etcd_destroy(e);
}

TestSuite(etcd, .init = setup, .fini = teardown);

Test(etcd, put_get_by_prefix_and_delete)
{
	const char bin[] = { 'a', 0, (char)0xff, 'z' };
	cr_assert_eq(rtci_etcd_put(e, "/t1/b", "two", 3, 0), 0);
	cr_assert_eq(rtci_etcd_put(e, "/t1/a", bin, sizeof(bin), 0), 0);
	cr_assert_eq(rtci_etcd_put(e, "/t10", "other prefix", 12, 0), 0);
	struct rtci_etcd_kv *kv;
	size_t n;
	int64_t rev = 0;
	cr_assert_eq(rtci_etcd_get_prefix(e, "/t1/", &kv, &n, &rev), 0);
	cr_assert_eq(n, 2);
	cr_assert_gt(rev, 0);
	cr_assert_str_eq(kv[0].key, "/t1/a");
	cr_assert_eq(kv[0].len, sizeof(bin));
	cr_assert_arr_eq(kv[0].value, bin, sizeof(bin));
	cr_assert_str_eq(kv[1].key, "/t1/b");
	cr_assert_str_eq((char *)kv[1].value, "two");
	rtci_etcd_kvs_free(kv, n);
	cr_assert_eq(rtci_etcd_delete(e, "/t1/", 1), 0);
	cr_assert_eq(rtci_etcd_get_prefix(e, "/t1/", &kv, &n, NULL), 0);
	cr_assert_eq(n, 0);
	rtci_etcd_kvs_free(kv, n);
	cr_assert_eq(rtci_etcd_get_prefix(e, "/t10", &kv, &n, NULL), 0);
	cr_assert_eq(n, 1, "a prefix delete takes only its own keys");
	rtci_etcd_kvs_free(kv, n);
}

Test(etcd, a_key_under_a_lease_goes_with_it)
{
	int64_t lease = 0;
	cr_assert_eq(rtci_etcd_lease_grant(e, 1, &lease), 0);
	cr_assert_neq(lease, 0);
	cr_assert_eq(rtci_etcd_put(e, "/lease/k", "v", 1, lease), 0);
	struct rtci_etcd_kv *kv;
	size_t n;
	cr_assert_eq(rtci_etcd_get_prefix(e, "/lease/", &kv, &n, NULL), 0);
	cr_assert_eq(n, 1);
	cr_assert_eq(kv[0].lease, lease);
	rtci_etcd_kvs_free(kv, n);
	cr_assert_eq(rtci_etcd_lease_keepalive(e, lease), 0);
	/* etcd lets a lease live at least its TTL (with a floor of its own) and a little more;
	 * only reads here, as a keepalive would renew it */
	n = 1;
	for (int i = 0; i < 100 && n; i++) {
		usleep(100000);
		cr_assert_eq(rtci_etcd_get_prefix(e, "/lease/", &kv, &n, NULL), 0);
		rtci_etcd_kvs_free(kv, n);
	}
	cr_assert_eq(n, 0, "the key outlived its lease");
	cr_assert_eq(rtci_etcd_lease_keepalive(e, lease), -ENOENT);
}

struct seen {
	pthread_mutex_t mu;
	int puts, deletes;
	char last[64];
};

static void on_event(void *user, enum rtci_etcd_event type, const struct rtci_etcd_kv *kv)
{
	struct seen *s = user;
	pthread_mutex_lock(&s->mu);
	if (type == RTCI_ETCD_PUT) {
		s->puts++;
		snprintf(s->last, sizeof(s->last), "%s=%s", kv->key, (const char *)kv->value);
	} else {
		s->deletes++;
	}
	pthread_mutex_unlock(&s->mu);
}

static int count(struct seen *s, int *dels)
{
	pthread_mutex_lock(&s->mu);
	int p = s->puts;
	*dels = s->deletes;
	pthread_mutex_unlock(&s->mu);
	return p;
}

Test(etcd, watch_sees_every_change_from_a_revision)
{
	struct seen s = { .mu = PTHREAD_MUTEX_INITIALIZER };
	cr_assert_eq(rtci_etcd_put(e, "/w/before", "0", 1, 0), 0);
	struct rtci_etcd_kv *kv;
	size_t n;
	int64_t rev;
	cr_assert_eq(rtci_etcd_get_prefix(e, "/w/", &kv, &n, &rev), 0);
	rtci_etcd_kvs_free(kv, n);
	struct rtci_etcd_watch *w;
	/* from the revision after the read: the change before it is not seen again */
	cr_assert_eq(rtci_etcd_watch_start(endpoints, "/w/", rev + 1, 100, on_event, NULL, &s, &w), 0);
	cr_assert_eq(rtci_etcd_put(e, "/w/a", "1", 1, 0), 0);
	cr_assert_eq(rtci_etcd_put(e, "/w/a", "2", 1, 0), 0);
	cr_assert_eq(rtci_etcd_put(e, "/x/other", "3", 1, 0), 0);
	cr_assert_eq(rtci_etcd_delete(e, "/w/a", 0), 0);
	int dels = 0;
	for (int i = 0; i < 100 && (count(&s, &dels) < 2 || dels < 1); i++)
		usleep(20000);
	rtci_etcd_watch_stop(w);
	cr_assert_eq(count(&s, &dels), 2);
	cr_assert_eq(dels, 1);
	cr_assert_str_eq(s.last, "/w/a=2");
}

Test(etcd, unreachable_endpoints_fail_in_time_and_the_next_one_is_tried)
{
	struct rtci_etcd *bad;
	cr_assert_eq(rtci_etcd_create("http://127.0.0.1:1", 300, &bad), 0);
	double t0 = rtci_mono_s();
	cr_assert_eq(rtci_etcd_put(bad, "/k", "v", 1, 0), -RTCI_ERR_ETCD_UNREACHABLE);
	cr_assert_lt(rtci_mono_s() - t0, 3.0);
	rtci_etcd_destroy(bad);
	char list[512];
	snprintf(list, sizeof(list), "http://127.0.0.1:1,%s", endpoints);
	cr_assert_eq(rtci_etcd_create(list, 1000, &bad), 0);
	cr_assert_eq(rtci_etcd_put(bad, "/k", "v", 1, 0), 0);
	rtci_etcd_destroy(bad);
	cr_assert_eq(rtci_etcd_create("", 1000, &bad), -EINVAL);
}
