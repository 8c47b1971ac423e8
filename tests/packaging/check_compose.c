/*  tests/packaging/check_compose.c - checks docker/compose.yaml against the
    daemons' --help and docker/entrypoint.sh, without a container engine.

        check_compose COMPOSE ENTRYPOINT DSCOORD [DSWORKER]

    It parses the file with libfyaml (already a dependency of dsctl, so CI
    needs nothing new; a real YAML parser, so what it checks is what
    `docker compose` reads) and checks:
      - 3 coordinator and 3 worker services, one image, `init: true`;
      - every GOSSAMER_* variable is one entrypoint.sh documents, and the
        role is coordinator or worker;
      - every `--flag` in `command:` is a flag of that role's daemon
        (`dscoord --help`, `dsworker --help`; the worker's are skipped
        with a note when DSWORKER is not given);
      - coordinators: distinct ids, one GOSSAMER_PEERS for all naming each
        member at its fixed address (ZeroMQ binds addresses, not names),
        the rpc endpoint at that address with its port published as the
        same port, the http port published;
      - workers join through every coordinator's rpc endpoint;
      - every service keeps /var/lib/gossamer in a declared named volume
        and is on the one declared private network, inside its subnet.
    Prints one line per problem and exits 1 if there is any, else 0; 2 on
    bad usage or an unreadable file.
*/
#include <libfyaml.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_WORDS 128
#define S_MAX_SVC   16
#define S_WORD_MAX  64
#define S_DATA_DIR  "/var/lib/gossamer"

typedef struct {
    char words[S_MAX_WORDS][S_WORD_MAX];
    size_t n;
} s_words_t;

typedef struct {
    const char *name;
    struct fy_node *node;
    struct fy_node *env;
    const char *role;
    const char *ip; /* coordinators: networks.NET.ipv4_address */
    unsigned id;
    unsigned rpc_port;
} s_svc_t;

static const char *s_file = "compose.yaml";
static int s_failures;

static void s_fail(const char *where, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void s_fail(const char *where, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: %s: ", s_file, where);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    s_failures++;
}

static void s_words_add(s_words_t *w, const char *s, size_t len)
{
    if (len == 0 || len >= S_WORD_MAX || w->n == S_MAX_WORDS)
        return;
    for (size_t i = 0; i < w->n; i++)
        if (strlen(w->words[i]) == len && strncmp(w->words[i], s, len) == 0)
            return;
    memcpy(w->words[w->n], s, len);
    w->words[w->n][len] = '\0';
    w->n++;
}

static bool s_words_has(const s_words_t *w, const char *s, size_t len)
{
    for (size_t i = 0; i < w->n; i++)
        if (strlen(w->words[i]) == len && strncmp(w->words[i], s, len) == 0)
            return true;
    return false;
}

/*  The long flags `prog --help` lists: lines "  --name ...". Returns 0, or
    -1 when the program cannot be run or lists no flag. */
static int s_help_flags(const char *prog, s_words_t *out)
{
    if (strchr(prog, '\'')) {
        fprintf(stderr, "check_compose: %s: a path with a quote is not supported\n", prog);
        return -1;
    }
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "'%s' --help", prog);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    char line[1024];
    while (fgets(line, sizeof line, p)) {
        if (strncmp(line, "  --", 4) != 0)
            continue;
        size_t len = strspn(line + 4, "abcdefghijklmnopqrstuvwxyz0123456789-");
        s_words_add(out, line + 4, len);
    }
    int status = pclose(p);
    if (status != 0 || out->n == 0) {
        fprintf(stderr, "check_compose: '%s --help' failed or listed no flags\n", prog);
        return -1;
    }
    return 0;
}

/*  The GOSSAMER_* variables entrypoint.sh documents in its comments. */
static int s_entrypoint_vars(const char *path, s_words_t *out)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "check_compose: cannot read %s\n", path);
        return -1;
    }
    char line[1024];
    while (fgets(line, sizeof line, f)) {
        if (line[0] != '#')
            continue;
        for (char *p = strstr(line, "GOSSAMER_"); p; p = strstr(p + 1, "GOSSAMER_")) {
            size_t len = strspn(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
            s_words_add(out, p, len);
        }
    }
    fclose(f);
    return out->n ? 0 : -1;
}

/*  The scalar text of map[key], or NULL when absent or not a scalar. */
static const char *s_str(struct fy_node *map, const char *key)
{
    if (!map || !fy_node_is_mapping(map))
        return NULL;
    struct fy_node *v = fy_node_mapping_lookup_by_string(map, key, FY_NT);
    return v && fy_node_is_scalar(v) ? fy_node_get_scalar0(v) : NULL;
}

static struct fy_node *s_get(struct fy_node *map, const char *key)
{
    if (!map || !fy_node_is_mapping(map))
        return NULL;
    return fy_node_mapping_lookup_by_string(map, key, FY_NT);
}

/*  Parses "tcp://HOST:PORT" into host (len) and port. Returns 0 or -1. */
static int s_endpoint(const char *ep, size_t eplen, const char **host, size_t *hostlen,
                      unsigned *port)
{
    if (eplen < 7 || strncmp(ep, "tcp://", 6) != 0)
        return -1;
    const char *h = ep + 6, *end = ep + eplen;
    const char *colon = NULL;
    for (const char *p = h; p < end; p++)
        if (*p == ':')
            colon = p;
    if (!colon || colon == h || colon + 1 == end)
        return -1;
    unsigned v = 0;
    for (const char *p = colon + 1; p < end; p++) {
        if (!isdigit((unsigned char)*p) || v > 65535)
            return -1;
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (v == 0 || v > 65535)
        return -1;
    *host = h;
    *hostlen = (size_t)(colon - h);
    *port = v;
    return 0;
}

/*  Does `ports:` publish container port `inner` (as `outer` unless 0)? */
static bool s_publishes(struct fy_node *svc, unsigned outer, unsigned inner)
{
    struct fy_node *ports = s_get(svc, "ports");
    if (!ports || !fy_node_is_sequence(ports))
        return false;
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(ports, &it))) {
        const char *t = fy_node_is_scalar(item) ? fy_node_get_scalar0(item) : NULL;
        if (!t)
            continue;
        const char *last = strrchr(t, ':');
        if (!last || (unsigned)atoi(last + 1) != inner)
            continue;
        const char *p = last;
        while (p > t && p[-1] != ':')
            p--;
        if (p == t) /* "7500": no host port */
            continue;
        if (outer == 0 || (unsigned)atoi(p) == outer)
            return true;
    }
    return false;
}

static bool s_in_subnet(const char *ip, const char *cidr)
{
    char net[64];
    const char *slash = cidr ? strchr(cidr, '/') : NULL;
    if (!ip || !slash || (size_t)(slash - cidr) >= sizeof net)
        return false;
    memcpy(net, cidr, (size_t)(slash - cidr));
    net[slash - cidr] = '\0';
    int bits = atoi(slash + 1);
    struct in_addr a, n;
    if (bits < 1 || bits > 32 || inet_pton(AF_INET, ip, &a) != 1 ||
        inet_pton(AF_INET, net, &n) != 1)
        return false;
    uint32_t mask = bits == 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
    return (ntohl(a.s_addr) & mask) == (ntohl(n.s_addr) & mask);
}

static void s_check_command(const s_svc_t *s, const s_words_t *flags, const char *prog)
{
    struct fy_node *cmd = s_get(s->node, "command");
    if (!cmd)
        return;
    char where[128];
    snprintf(where, sizeof where, "services.%s.command", s->name);
    if (!fy_node_is_sequence(cmd)) {
        s_fail(where, "write it as a list ([\"--flag\", \"value\"]) so no shell splits it");
        return;
    }
    void *it = NULL;
    struct fy_node *item;
    while ((item = fy_node_sequence_iterate(cmd, &it))) {
        const char *w = fy_node_is_scalar(item) ? fy_node_get_scalar0(item) : NULL;
        if (!w || strncmp(w, "--", 2) != 0 || !flags)
            continue;
        size_t len = strcspn(w + 2, "=");
        if (!s_words_has(flags, w + 2, len))
            s_fail(where, "--%.*s is not a flag of %s (see `%s --help`)", (int)len, w + 2, prog,
                   prog);
    }
}

static void s_check_volume(const s_svc_t *s, struct fy_node *volumes)
{
    char where[128];
    snprintf(where, sizeof where, "services.%s.volumes", s->name);
    struct fy_node *v = s_get(s->node, "volumes");
    void *it = NULL;
    struct fy_node *item;
    while (v && fy_node_is_sequence(v) && (item = fy_node_sequence_iterate(v, &it))) {
        const char *t = fy_node_is_scalar(item) ? fy_node_get_scalar0(item) : NULL;
        const char *colon = t ? strchr(t, ':') : NULL;
        if (!colon || strncmp(colon + 1, S_DATA_DIR, strlen(S_DATA_DIR)) != 0 ||
            (colon[1 + strlen(S_DATA_DIR)] != '\0' && colon[1 + strlen(S_DATA_DIR)] != ':'))
            continue;
        char name[S_WORD_MAX];
        snprintf(name, sizeof name, "%.*s", (int)(colon - t), t);
        if (!s_get(volumes, name))
            s_fail(where, "volume \"%s\" is not declared under the top-level volumes:", name);
        return;
    }
    s_fail(where, "no named volume is mounted at " S_DATA_DIR " (the daemon's data would be lost)");
}

static void s_check_network(s_svc_t *s, const char *net, const char *subnet)
{
    char where[128];
    snprintf(where, sizeof where, "services.%s.networks", s->name);
    struct fy_node *n = s_get(s->node, "networks");
    bool on = false;
    if (n && fy_node_is_sequence(n)) {
        void *it = NULL;
        struct fy_node *item;
        while ((item = fy_node_sequence_iterate(n, &it)))
            on = on || (fy_node_is_scalar(item) && strcmp(fy_node_get_scalar0(item), net) == 0);
    } else if (n && fy_node_is_mapping(n)) {
        on = s_get(n, net) != NULL;
        s->ip = s_str(s_get(n, net), "ipv4_address");
    }
    if (!on)
        s_fail(where, "not on the private network \"%s\"", net);
    if (s->ip && !s_in_subnet(s->ip, subnet))
        s_fail(where, "ipv4_address %s is outside the network's subnet %s", s->ip,
               subnet ? subnet : "(none)");
}

static void s_check_env(s_svc_t *s, const s_words_t *vars)
{
    char where[160];
    snprintf(where, sizeof where, "services.%s.environment", s->name);
    s->env = s_get(s->node, "environment");
    if (!s->env || !fy_node_is_mapping(s->env)) {
        s_fail(where, "missing, or not a mapping (write KEY: value lines)");
        s->env = NULL;
        return;
    }
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(s->env, &it))) {
        struct fy_node *k = fy_node_pair_key(p);
        const char *key = fy_node_is_scalar(k) ? fy_node_get_scalar0(k) : "";
        if (strncmp(key, "GOSSAMER_", 9) == 0 && !s_words_has(vars, key, strlen(key)))
            s_fail(where, "%s is not a variable docker/entrypoint.sh reads (see its header)", key);
        if (!fy_node_is_scalar(fy_node_pair_value(p)))
            s_fail(where, "%s: the value must be a string", key);
    }
    s->role = s_str(s->env, "GOSSAMER_ROLE");
    if (!s->role || (strcmp(s->role, "coordinator") != 0 && strcmp(s->role, "worker") != 0))
        s_fail(where, "GOSSAMER_ROLE must be coordinator or worker");
}

/*  Coordinators: ids, peers, rpc and http. */
static void s_check_coordinators(s_svc_t *svc, size_t n)
{
    const char *peers0 = NULL;
    for (size_t i = 0; i < n; i++) {
        s_svc_t *s = &svc[i];
        if (!s->role || strcmp(s->role, "coordinator") != 0)
            continue;
        char where[160];
        snprintf(where, sizeof where, "services.%s.environment", s->name);
        const char *id = s_str(s->env, "GOSSAMER_ID");
        s->id = id ? (unsigned)strtoul(id, NULL, 10) : 0;
        if (!s->id)
            s_fail(where, "GOSSAMER_ID must be a member id (1, 2, 3)");
        for (size_t j = 0; j < i; j++)
            if (svc[j].id && svc[j].id == s->id)
                s_fail(where, "GOSSAMER_ID %u is also %s's", s->id, svc[j].name);
        if (!s->ip)
            s_fail(where, "a coordinator needs a fixed address (networks.NET.ipv4_address): "
                          "ZeroMQ binds addresses, not host names");
        const char *rpc = s_str(s->env, "GOSSAMER_RPC");
        const char *host;
        size_t hlen;
        if (!rpc || s_endpoint(rpc, strlen(rpc), &host, &hlen, &s->rpc_port) != 0)
            s_fail(where, "GOSSAMER_RPC must be tcp://ADDRESS:PORT");
        else if (s->ip && (hlen != strlen(s->ip) || strncmp(host, s->ip, hlen) != 0))
            s_fail(where, "GOSSAMER_RPC %s is not at this service's address %s", rpc, s->ip);
        else if (!s_publishes(s->node, s->rpc_port, s->rpc_port))
            s_fail(where,
                   "rpc port %u is not published as the same port (\"127.0.0.1:%u:%u\"): "
                   "dsctl on the workstation follows the leader's advertised port",
                   s->rpc_port, s->rpc_port, s->rpc_port);
        const char *http = s_str(s->env, "GOSSAMER_HTTP");
        const char *hc = strrchr(http ? http : "0.0.0.0:7500", ':');
        if (!hc || !s_publishes(s->node, 0, (unsigned)atoi(hc + 1)))
            s_fail(where, "the http port %s is not published", hc ? hc + 1 : "?");
        const char *peers = s_str(s->env, "GOSSAMER_PEERS");
        if (!peers) {
            s_fail(where, "GOSSAMER_PEERS is required");
            continue;
        }
        if (peers0 && strcmp(peers, peers0) != 0)
            s_fail(where, "GOSSAMER_PEERS differs from the other coordinators' (all must list "
                          "the same members)");
        peers0 = peers0 ? peers0 : peers;
    }
    /* Each member in the list, at its address; nothing else in it. */
    size_t listed = 0;
    for (const char *p = peers0; p && *p;) {
        size_t len = strcspn(p, ",");
        const char *eq = memchr(p, '=', len);
        unsigned id = (unsigned)strtoul(p, NULL, 10);
        const char *host;
        size_t hlen;
        unsigned port;
        const s_svc_t *m = NULL;
        for (size_t i = 0; i < n && !m; i++)
            if (svc[i].role && strcmp(svc[i].role, "coordinator") == 0 && svc[i].id == id)
                m = &svc[i];
        if (!eq || s_endpoint(eq + 1, len - (size_t)(eq + 1 - p), &host, &hlen, &port) != 0)
            s_fail("GOSSAMER_PEERS", "\"%.*s\" is not ID=tcp://ADDRESS:PORT", (int)len, p);
        else if (!m)
            s_fail("GOSSAMER_PEERS", "member %u is not a coordinator service", id);
        else if (m->ip && (hlen != strlen(m->ip) || strncmp(host, m->ip, hlen) != 0))
            s_fail("GOSSAMER_PEERS", "member %u is at %.*s, but %s's address is %s", id, (int)hlen,
                   host, m->name, m->ip);
        listed++;
        p += len + (p[len] == ',');
    }
    size_t coords = 0;
    for (size_t i = 0; i < n; i++)
        coords += svc[i].role && strcmp(svc[i].role, "coordinator") == 0;
    if (peers0 && listed != coords)
        s_fail("GOSSAMER_PEERS", "lists %zu members for %zu coordinator services", listed, coords);
}

static void s_check_workers(const s_svc_t *svc, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const s_svc_t *w = &svc[i];
        if (!w->role || strcmp(w->role, "worker") != 0)
            continue;
        char where[160];
        snprintf(where, sizeof where, "services.%s.environment.GOSSAMER_JOIN", w->name);
        const char *join = s_str(w->env, "GOSSAMER_JOIN");
        if (!join) {
            s_fail(where, "required (the coordinators' rpc endpoints)");
            continue;
        }
        for (size_t c = 0; c < n; c++) {
            const s_svc_t *co = &svc[c];
            if (!co->role || strcmp(co->role, "coordinator") != 0 || !co->rpc_port)
                continue;
            bool found = false;
            for (const char *p = join; *p && !found;) {
                size_t len = strcspn(p, ",");
                const char *host;
                size_t hlen;
                unsigned port;
                if (s_endpoint(p, len, &host, &hlen, &port) == 0 && port == co->rpc_port &&
                    ((hlen == strlen(co->name) && strncmp(host, co->name, hlen) == 0) ||
                     (co->ip && hlen == strlen(co->ip) && strncmp(host, co->ip, hlen) == 0)))
                    found = true;
                p += len + (p[len] == ',');
            }
            if (!found)
                s_fail(where, "does not name coordinator %s (tcp://%s:%u)", co->name, co->name,
                       co->rpc_port);
        }
    }
}

/*  The one network declared at the top level, and its subnet. */
static const char *s_network(struct fy_node *root, const char **subnet)
{
    struct fy_node *nets = s_get(root, "networks");
    *subnet = NULL;
    if (!nets || !fy_node_is_mapping(nets) || fy_node_mapping_item_count(nets) != 1) {
        s_fail("networks", "declare exactly one private network");
        return "(none)";
    }
    void *it = NULL;
    struct fy_node_pair *p = fy_node_mapping_iterate(nets, &it);
    const char *name = fy_node_get_scalar0(fy_node_pair_key(p));
    struct fy_node *cfg =
        fy_node_by_path(fy_node_pair_value(p), "/ipam/config/0", FY_NT, FYNWF_DONT_FOLLOW);
    *subnet = s_str(cfg, "subnet");
    if (!*subnet)
        s_fail("networks", "%s needs ipam.config[0].subnet (the coordinators' fixed addresses)",
               name ? name : "?");
    struct fy_node *internal =
        fy_node_by_path(fy_node_pair_value(p), "/internal", FY_NT, FYNWF_DONT_FOLLOW);
    if (internal)
        s_fail("networks", "%s: internal networks cannot publish ports", name ? name : "?");
    return name ? name : "(none)";
}

int main(int argc, char **argv)
{
    if (argc < 4 || argc > 5) {
        fprintf(stderr, "usage: check_compose COMPOSE ENTRYPOINT DSCOORD [DSWORKER]\n");
        return 2;
    }
    s_file = argv[1];
    static s_words_t vars, coord_flags, worker_flags;
    if (s_entrypoint_vars(argv[2], &vars) != 0 || s_help_flags(argv[3], &coord_flags) != 0)
        return 2;
    bool have_worker = argc == 5 && s_help_flags(argv[4], &worker_flags) == 0;
    if (!have_worker)
        printf("check_compose: dsworker is not built: the workers' flags are not checked\n");

    struct fy_parse_cfg cfg = {.flags = FYPCF_QUIET};
    struct fy_document *doc = fy_document_build_from_file(&cfg, s_file);
    if (!doc) {
        fprintf(stderr, "%s: not valid YAML (run a YAML linter for the position)\n", s_file);
        return 2;
    }
    struct fy_node *root = fy_document_root(doc);
    struct fy_node *services = s_get(root, "services");
    struct fy_node *volumes = s_get(root, "volumes");
    if (!services || !fy_node_is_mapping(services)) {
        s_fail("services", "missing");
        fy_document_destroy(doc);
        return 1;
    }
    const char *subnet;
    const char *net = s_network(root, &subnet);

    s_svc_t svc[S_MAX_SVC];
    size_t n = 0, coords = 0, workers = 0;
    const char *image0 = NULL;
    void *it = NULL;
    struct fy_node_pair *p;
    while ((p = fy_node_mapping_iterate(services, &it)) && n < S_MAX_SVC) {
        s_svc_t *s = &svc[n++];
        memset(s, 0, sizeof *s);
        s->name = fy_node_get_scalar0(fy_node_pair_key(p));
        s->node = fy_node_pair_value(p);
        char where[128];
        snprintf(where, sizeof where, "services.%s", s->name ? s->name : "?");
        const char *image = s_str(s->node, "image");
        if (!image)
            s_fail(where, "no image");
        else if (image0 && strcmp(image, image0) != 0)
            s_fail(where, "image %s differs from %s (one image holds the three programs)", image,
                   image0);
        image0 = image0 ? image0 : image;
        const char *init = s_str(s->node, "init");
        if (!init || strcmp(init, "true") != 0)
            s_fail(where, "init: true is missing (an init reaps the instances' orphans)");
        s_check_env(s, &vars);
        s_check_network(s, net, subnet);
        s_check_volume(s, volumes);
        bool coord = s->role && strcmp(s->role, "coordinator") == 0;
        coords += coord;
        workers += s->role && !coord;
        if (coord)
            s_check_command(s, &coord_flags, "dscoord");
        else if (s->role)
            s_check_command(s, have_worker ? &worker_flags : NULL, "dsworker");
    }
    if (coords != 3 || workers != 3)
        s_fail("services", "%zu coordinators and %zu workers; the demo cluster has 3 and 3", coords,
               workers);
    s_check_coordinators(svc, n);
    s_check_workers(svc, n);
    fy_document_destroy(doc);
    if (s_failures)
        fprintf(stderr, "%s: %d problem(s)\n", s_file, s_failures);
    else
        printf("%s: %zu services checked, no problems\n", s_file, n);
    return s_failures ? 1 : 0;
}
