/*
 * openloop: a precise, cheap open-loop HTTP/1.1 client for the latency benchmarks (bench side
 * only, not part of weft; built at bench time by bench/openloop.ts with clang).
 *
 *   openloop <http://ip:port/path> <rate> <seconds> [--trace] [--spin-us N] [--warmup N]
 *            [--max-conns N]
 *
 * Requests are due at absolute times start + i/rate (CLOCK_MONOTONIC). The thread sleeps in
 * epoll_wait on a timerfd armed with TFD_TIMER_ABSTIME at the next due time (minus --spin-us, the
 * rest spun while polling the sockets; default 0), with the timer slack set to 1 ns
 * (PR_SET_TIMERSLACK), so a send leaves within microseconds of its due time when the thread gets
 * a core. Connections are a keep-alive pool as node:http's Agent keeps one (bench/seq_client.ts):
 * one request in flight per connection, the most recently freed idle connection first, a new one
 * opened when none is idle (up to --max-conns, default 64; beyond that requests queue and their
 * wait counts). Each request is timed from its scheduled start (no coordinated omission) and from
 * its actual send (the write). Prints one JSON line (ms; P50 P90 P99 P999 Max of each):
 *   p50 ... max, avg   from the scheduled start;
 *   sendP50 ...        from the send;
 *   lagP50 ...         send − scheduled start: the client's own lateness plus any wait for a
 *                      connection (a new one's connect, or all --max-conns busy);
 *   timerP50 ...       the moment the client dispatched it − scheduled start: the client's own
 *                      timer precision and run-queue wait only;
 *   sent failed conns newConns, cpuMs runqMs (the thread's CPU and run-queue wait over the measured
 *   run, /proc/thread-self/schedstat), nvcsw nivcsw, spinUs, policy (other|slice|fifo);
 * and with --trace `samples`: [scheduled start (ms since the epoch), latency ms, send lag ms, new
 * connection 0/1] per request, as bench/seq_client.ts `trace` prints them.
 * --slice-us N: SCHED_OTHER with an N µs EEVDF slice; --fifo: SCHED_FIFO priority 1 (root).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define BUF 16384
#define NONE (-1)

typedef struct {
  int fd;
  int connecting; /* non-blocking connect in progress */
  int busy;       /* a request is in flight (or waiting for the connect) */
  int req;        /* index of the request in flight */
  size_t have;    /* bytes of the current response read so far */
  char buf[BUF];
} Conn;

static int64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static struct sockaddr_in addr;
static char request[1024];
static size_t request_len;
static int ep;
static Conn *conns;
static int nconns, live, max_conns = 64; /* slots used, open connections, the cap */
static int tfd;
static int *idle; /* stack of idle connection indexes, most recently freed on top */
static int nidle;
static int *queue; /* requests due while every connection was busy */
static int qhead, qtail;
static int64_t *sched_at, *disp_at, *sent_at, *done_at;
static unsigned char *fresh_of;
static int completed, failed;

static void die(const char *what) {
  fprintf(stderr, "openloop: %s: %s\n", what, strerror(errno));
  exit(2);
}

static int open_conn(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  int k = 0;
  while (k < nconns && conns[k].fd >= 0) k++; /* a closed connection's slot, or a new one */
  if (k == nconns) nconns++;
  live++;
  Conn *c = &conns[k];
  c->fd = fd;
  c->connecting = 0;
  c->busy = 0;
  c->req = NONE;
  c->have = 0;
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    if (errno != EINPROGRESS) die("connect");
    c->connecting = 1;
  }
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.u32 = (uint32_t)k};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
  return k;
}

static void write_request(Conn *c);

/* The connection is gone (closed by the peer, an error, or `Connection: close`): its request in
 * flight, if any, failed; a request waiting in the queue gets a new connection. */
static void drop(Conn *c, int request_failed) {
  if (request_failed && c->req != NONE) failed++;
  close(c->fd);
  c->fd = -1;
  c->busy = 0;
  c->req = NONE;
  live--;
  if (qhead < qtail && live < max_conns) {
    int k = open_conn();
    conns[k].busy = 1;
    conns[k].req = queue[qhead++];
    if (!conns[k].connecting) write_request(&conns[k]);
  }
}

static void write_request(Conn *c) {
  sent_at[c->req] = now_ns();
  ssize_t n = send(c->fd, request, request_len, MSG_NOSIGNAL);
  if (n != (ssize_t)request_len) drop(c, 1); /* a small request on an idle socket: all or nothing */
}

/* Starts request `i` on an idle connection, a new one, or queues it. */
static void dispatch(int i) {
  disp_at[i] = now_ns();
  int k;
  if (nidle > 0) {
    k = idle[--nidle];
  } else if (live < max_conns) {
    k = open_conn();
    fresh_of[i] = 1;
  } else {
    queue[qtail++] = i;
    return;
  }
  Conn *c = &conns[k];
  c->busy = 1;
  c->req = i;
  c->have = 0;
  if (!c->connecting) write_request(c);
}

static void release(int k) {
  Conn *c = &conns[k];
  c->busy = 0;
  c->req = NONE;
  if (qhead < qtail) {
    int i = queue[qhead++];
    c->busy = 1;
    c->req = i;
    c->have = 0;
    write_request(c);
  } else {
    idle[nidle++] = k;
  }
}

/* Length of a complete response in buf[0..have), 0 if incomplete, -1 if malformed. */
static long response_length(const char *buf, size_t have, int *closes) {
  const char *end = memmem(buf, have, "\r\n\r\n", 4);
  if (!end) return have >= BUF ? -1 : 0;
  size_t head = (size_t)(end - buf) + 4;
  long body = -1;
  *closes = 0;
  for (const char *p = buf; p < end;) {
    const char *eol = memmem(p, (size_t)(end - p) + 2, "\r\n", 2);
    if (!eol) break;
    if ((size_t)(eol - p) > 15 && strncasecmp(p, "content-length:", 15) == 0) {
      body = strtol(p + 15, NULL, 10);
    } else if ((size_t)(eol - p) > 11 && strncasecmp(p, "connection:", 11) == 0) {
      const char *v = p + 11;
      while (*v == ' ') v++;
      if (strncasecmp(v, "close", 5) == 0) *closes = 1;
    }
    p = eol + 2;
  }
  if (body < 0) return -1; /* chunked or close-delimited bodies are not needed here */
  return head + (size_t)body <= have ? (long)(head + (size_t)body) : 0;
}

static void on_event(int k, uint32_t events) {
  Conn *c = &conns[k];
  if (c->fd < 0) return;
  if (c->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    c->connecting = 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u32 = (uint32_t)k};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev); /* connected: no more EPOLLOUT edges */
    if (err != 0) {
      drop(c, 1);
      return;
    }
    if (c->req != NONE) write_request(c);
    if (c->fd < 0) return;
  }
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return;
  for (;;) {
    ssize_t n = recv(c->fd, c->buf + c->have, BUF - c->have, 0);
    if (n < 0 && errno == EAGAIN) return;
    if (n <= 0) { /* closed or failed: the request in flight fails, the connection is gone */
      drop(c, 1);
      return;
    }
    int64_t t = now_ns();
    c->have += (size_t)n;
    if (c->req == NONE) continue; /* unsolicited bytes: ignore */
    int closes = 0;
    long len = response_length(c->buf, c->have, &closes);
    if (len < 0) {
      drop(c, 1);
      return;
    }
    if (len == 0) continue;
    done_at[c->req] = t;
    completed++;
    if (closes) {
      c->req = NONE;
      drop(c, 0);
      return;
    }
    c->have = 0;
    release(k);
  }
}

static void poll_once(int timeout_ms) {
  struct epoll_event evs[64];
  int n = epoll_wait(ep, evs, 64, timeout_ms);
  if (n < 0 && errno != EINTR) die("epoll_wait");
  for (int j = 0; j < n; j++) {
    if (evs[j].data.u32 == UINT32_MAX) {
      uint64_t x;
      (void)!read(tfd, &x, sizeof x);
    } else {
      on_event((int)evs[j].data.u32, evs[j].events);
    }
  }
}

/* The thread's CPU time (ns, /proc/thread-self/schedstat: exact, where getrusage samples ticks)
 * and run-queue wait. */
static void schedstat(int64_t *cpu, int64_t *wait) {
  *cpu = *wait = -1;
  FILE *f = fopen("/proc/thread-self/schedstat", "r");
  if (!f) return;
  long long a, b;
  if (fscanf(f, "%lld %lld", &a, &b) == 2) {
    *cpu = a;
    *wait = b;
  }
  fclose(f);
}

/* SCHED_OTHER with a short EEVDF slice (sched_runtime, Linux >= 6.12): the woken client preempts
 * a task with the default slice instead of waiting for that slice to end. */
static int set_slice(int64_t ns) {
  struct {
    uint32_t size, policy;
    uint64_t flags;
    int32_t nice;
    uint32_t priority;
    uint64_t runtime, deadline, period;
  } attr = {.size = 48, .runtime = (uint64_t)ns};
  return (int)syscall(SYS_sched_setattr, 0, &attr, 0);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double q(const double *xs, int n, double p) {
  if (n == 0) return -1;
  int i = (int)(p * n);
  return xs[i < n ? i : n - 1];
}

static void stats(const char *prefix, double *xs, int n) {
  qsort(xs, (size_t)n, sizeof *xs, cmp);
  if (prefix[0] == '\0') {
    printf("\"p50\":%.4f,\"p90\":%.4f,\"p99\":%.4f,\"p999\":%.4f,\"max\":%.4f,", q(xs, n, .5),
           q(xs, n, .9), q(xs, n, .99), q(xs, n, .999), n ? xs[n - 1] : -1);
  } else {
    printf("\"%sP50\":%.4f,\"%sP90\":%.4f,\"%sP99\":%.4f,\"%sP999\":%.4f,\"%sMax\":%.4f,", prefix,
           q(xs, n, .5), prefix, q(xs, n, .9), prefix, q(xs, n, .99), prefix, q(xs, n, .999),
           prefix, n ? xs[n - 1] : -1);
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: openloop <http://ip:port/path> <rate> <seconds> [--trace] "
                    "[--spin-us N] [--warmup N] [--max-conns N]\n");
    return 2;
  }
  const char *url = argv[1];
  double rate = atof(argv[2]), seconds = atof(argv[3]);
  int trace = 0, warmup = 50;
  int64_t spin = 0, slice = 0;
  int fifo = 0;
  for (int a = 4; a < argc; a++) {
    if (strcmp(argv[a], "--trace") == 0) trace = 1;
    else if (strcmp(argv[a], "--spin-us") == 0 && a + 1 < argc) spin = atoll(argv[++a]) * 1000;
    else if (strcmp(argv[a], "--warmup") == 0 && a + 1 < argc) warmup = atoi(argv[++a]);
    else if (strcmp(argv[a], "--slice-us") == 0 && a + 1 < argc) slice = atoll(argv[++a]) * 1000;
    else if (strcmp(argv[a], "--fifo") == 0) fifo = 1;
    else if (strcmp(argv[a], "--max-conns") == 0 && a + 1 < argc) max_conns = atoi(argv[++a]);
  }
  if (strncmp(url, "http://", 7) != 0 || rate <= 0 || seconds <= 0 || max_conns < 1) {
    fprintf(stderr, "openloop: need an http://ip:port/path URL, a rate and seconds\n");
    return 2;
  }
  char host[256];
  const char *hp = url + 7, *slash = strchr(hp, '/');
  const char *path = slash ? slash : "/";
  size_t hl = slash ? (size_t)(slash - hp) : strlen(hp);
  if (hl >= sizeof host) return 2;
  memcpy(host, hp, hl);
  host[hl] = '\0';
  char ip[256];
  strcpy(ip, host);
  char *colon = strrchr(ip, ':');
  int port = 80;
  if (colon) {
    *colon = '\0';
    port = atoi(colon + 1);
  }
  addr.sin_family = AF_INET;
  addr.sin_port = htons((uint16_t)port);
  if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1) {
    fprintf(stderr, "openloop: %s is not an IPv4 address\n", ip);
    return 2;
  }
  request_len = (size_t)snprintf(request, sizeof request,
                                 "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: keep-alive\r\n\r\n",
                                 path, host);
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
  const char *policy = "other";
  if (fifo) {
    struct sched_param sp = {.sched_priority = 1};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) == 0) policy = "fifo";
    else fprintf(stderr, "openloop: SCHED_FIFO: %s (default policy kept)\n", strerror(errno));
  } else if (slice > 0) {
    if (set_slice(slice) == 0) policy = "slice";
    else fprintf(stderr, "openloop: sched_setattr slice: %s (default kept)\n", strerror(errno));
  }

  int total = (int)(rate * seconds + 0.5);
  int cap = total + warmup;
  sched_at = calloc((size_t)cap, sizeof *sched_at);
  sent_at = calloc((size_t)cap, sizeof *sent_at);
  disp_at = calloc((size_t)cap, sizeof *disp_at);
  done_at = calloc((size_t)cap, sizeof *done_at);
  fresh_of = calloc((size_t)cap, 1);
  queue = calloc((size_t)cap, sizeof *queue);
  conns = calloc((size_t)max_conns, sizeof *conns);
  if (conns) for (int k = 0; k < max_conns; k++) conns[k].fd = -1;
  idle = calloc((size_t)max_conns, sizeof *idle);
  if (!sched_at || !disp_at || !sent_at || !done_at || !fresh_of || !queue || !conns || !idle) die("calloc");
  ep = epoll_create1(EPOLL_CLOEXEC);
  tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (ep < 0 || tfd < 0) die("epoll/timerfd");
  struct epoll_event tev = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
  if (epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev) < 0) die("epoll_ctl timerfd");

  /* Warm-up: sequential requests (connections, the path's first-request costs), not counted. */
  for (int i = 0; i < warmup; i++) {
    int before = completed + failed;
    sched_at[total + i] = now_ns();
    dispatch(total + i);
    int64_t give_up = now_ns() + 5000000000LL;
    while (completed + failed == before && now_ns() < give_up) poll_once(100);
  }
  int warm_failed = failed;
  completed = 0;
  failed = 0;

  struct rusage r0, r1;
  getrusage(RUSAGE_SELF, &r0);
  int64_t cpu0, wait0, cpu1, wait1;
  schedstat(&cpu0, &wait0);
  struct timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  int64_t start = now_ns() + 1000000; /* 1 ms from now: the first due time is in the future */
  double epoch_ms = (double)wall.tv_sec * 1e3 + wall.tv_nsec / 1e6 + 1.0;
  int64_t period = (int64_t)(1e9 / rate);
  int next = 0;
  int64_t deadline = 0;
  for (;;) {
    int64_t t = now_ns();
    while (next < total && start + (int64_t)next * period <= t) {
      sched_at[next] = start + (int64_t)next * period;
      dispatch(next);
      next++;
      t = now_ns();
    }
    if (next >= total) {
      if (deadline == 0) deadline = t + 5000000000LL; /* the last responses: 5 s at most */
      if (completed + failed >= total || t >= deadline) break;
      poll_once(10);
      continue;
    }
    int64_t due = start + (int64_t)next * period;
    if (due - t <= spin) { /* the last microseconds: poll the sockets without sleeping */
      poll_once(0);
      continue;
    }
    int64_t wake = due - spin;
    struct itimerspec its = {.it_value = {.tv_sec = wake / 1000000000LL, .tv_nsec = wake % 1000000000LL}};
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) < 0) die("timerfd_settime");
    poll_once(-1);
  }
  getrusage(RUSAGE_SELF, &r1);
  schedstat(&cpu1, &wait1);

  int n = 0;
  double *lat = malloc(sizeof(double) * (size_t)total), *from_send = malloc(sizeof(double) * (size_t)total),
         *lag = malloc(sizeof(double) * (size_t)total), *timer = malloc(sizeof(double) * (size_t)total);
  double sum = 0;
  int nfresh = 0;
  for (int i = 0; i < total; i++) {
    if (done_at[i] == 0) continue;
    lat[n] = (double)(done_at[i] - sched_at[i]) / 1e6;
    from_send[n] = (double)(done_at[i] - sent_at[i]) / 1e6;
    lag[n] = (double)(sent_at[i] - sched_at[i]) / 1e6;
    timer[n] = (double)(disp_at[i] - sched_at[i]) / 1e6;
    sum += lat[n];
    nfresh += fresh_of[i];
    n++;
  }
  printf("{");
  if (trace) {
    printf("\"samples\":[");
    int first = 1;
    for (int i = 0; i < total; i++) {
      if (done_at[i] == 0) continue;
      printf("%s[%.4f,%.4f,%.4f,%d]", first ? "" : ",",
             epoch_ms + (double)(sched_at[i] - start) / 1e6,
             (double)(done_at[i] - sched_at[i]) / 1e6, (double)(sent_at[i] - sched_at[i]) / 1e6,
             fresh_of[i]);
      first = 0;
    }
    printf("],");
  }
  stats("", lat, n);
  stats("send", from_send, n);
  stats("lag", lag, n);
  stats("timer", timer, n);
  printf("\"avg\":%.4f,\"sent\":%d,\"failed\":%d,\"warmupFailed\":%d,\"conns\":%d,\"newConns\":%d,"
         "\"cpuMs\":%.1f,\"runqMs\":%.1f,\"nvcsw\":%ld,\"nivcsw\":%ld,\"spinUs\":%lld,"
         "\"policy\":\"%s\"}\n",
         n ? sum / n : -1, total, total - n, warm_failed, nconns, nfresh,
         (double)(cpu1 - cpu0) / 1e6, (double)(wait1 - wait0) / 1e6, r1.ru_nvcsw - r0.ru_nvcsw,
         r1.ru_nivcsw - r0.ru_nivcsw, (long long)(spin / 1000), policy);
  return 0;
}
