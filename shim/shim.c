/*
 * shim.c: the thin C layer of tunnel.kext. It owns what must be C data or C-made function
 * pointers (kmod_info, the cdevsw table, ifnet and protocol callback tables) and forwards every
 * decision to the Rust core (src/). No driver logic lives here.
 */
#include "kpi.h"

/* TUN_BUNDLE_ID and TUN_BUNDLE_VERSION come from Info.plist, through build.rs. */
#if !defined(TUN_BUNDLE_ID) || !defined(TUN_BUNDLE_VERSION)
#error "build.rs defines TUN_BUNDLE_ID and TUN_BUNDLE_VERSION from Info.plist"
#endif

/*
 * cdevsw_add index: search upwards from 24. -1 searches from 0, which collides with built-in
 * devices that register fixed majors later; xnu calls -24 "currently a safe starting point"
 * (xnu bsd/kern/bsd_stubs.c). Contract LD-1.
 */
#define TUN_CDEVSW_SEARCH_FROM (-24)

/*
 * Unused cdevsw slots are stubs rather than NULL, as XNU's own character devices have (eno_stop,
 * eno_reset, eno_mmap, eno_strat in bsd/kern/bsd_stubs.c). mmap(2) of a character device never
 * reaches d_mmap: mmap() answers ENODEV for a character device first (bsd/kern/kern_mman.c).
 */
static int tun_no_stop(struct tty *tp, int rw) { (void)tp; (void)rw; return ENODEV; }
static int tun_no_reset(int uban) { (void)uban; return ENODEV; }
static int tun_no_mmap(void) { return ENODEV; }
static void tun_no_strategy(struct buf *bp) { (void)bp; }

/*
 * The cdevsw entry points of one link kind: C functions (the kernel calls them through the
 * cdevsw, so they are made here, rule 4) that forward to the Rust core with their kind.
 */
#define TUN_CDEV_ENTRY_POINTS(link, prefix)                                                     \
    static int prefix##_open(dev_t dev, int oflags, int devtype, struct proc *p)               \
    {                                                                                           \
        return tun_dev_open(link, dev, oflags, devtype, p);                                     \
    }                                                                                           \
    static int prefix##_close(dev_t dev, int fflag, int devtype, struct proc *p)               \
    {                                                                                           \
        return tun_dev_close(link, dev, fflag, devtype, p);                                     \
    }                                                                                           \
    static int prefix##_read(dev_t dev, struct uio *uio, int ioflag)                           \
    {                                                                                           \
        return tun_dev_read(link, dev, uio, ioflag);                                            \
    }                                                                                           \
    static int prefix##_write(dev_t dev, struct uio *uio, int ioflag)                          \
    {                                                                                           \
        return tun_dev_write(link, dev, uio, ioflag);                                           \
    }                                                                                           \
    static int prefix##_ioctl(dev_t dev, u_long cmd, caddr_t data, int fflag, struct proc *p)  \
    {                                                                                           \
        return tun_dev_ioctl(link, dev, cmd, data, fflag, p);                                   \
    }                                                                                           \
    static int prefix##_select(dev_t dev, int which, void *wql, struct proc *p)                \
    {                                                                                           \
        return tun_dev_select(link, dev, which, wql, p);                                        \
    }                                                                                           \
    /* One static, zero-initialised object per kind is given to cdevsw_add and to            \
     * cdevsw_remove: removal compares all 112 bytes, padding included (kext-build.md 7). */   \
    static struct cdevsw prefix##_cdevsw = {                                                    \
        .d_open = prefix##_open,                                                                \
        .d_close = prefix##_close,                                                              \
        .d_read = prefix##_read,                                                                \
        .d_write = prefix##_write,                                                              \
        .d_ioctl = prefix##_ioctl,                                                              \
        .d_stop = tun_no_stop,                                                                  \
        .d_reset = tun_no_reset,                                                                \
        .d_ttys = NULL,                                                                         \
        .d_select = prefix##_select,                                                            \
        .d_mmap = tun_no_mmap,                                                                  \
        .d_strategy = tun_no_strategy,                                                          \
        .d_reserved_1 = NULL,                                                                   \
        .d_reserved_2 = NULL,                                                                   \
        .d_type = 0,                                                                            \
    };

TUN_CDEV_ENTRY_POINTS(TUN_SHIM_LINK_IP, tun_ip)
TUN_CDEV_ENTRY_POINTS(TUN_SHIM_LINK_ETHERNET, tun_ether)

/*
 * One table per link kind (src/link.rs describes each kind to the core): the cdevsw, the
 * device-node and interface names, and the ifnet_allocate parameters other than the unit, the
 * unique id and the softc.
 */
struct tun_shim_link_table {
    struct cdevsw *cdevsw;
    const char *node_format;
    const char *if_name;
    u_int32_t if_name_len;
    struct ifnet_init_params init;
};

static const char tun_ip_if_name[] = "tun";
static const char tun_ether_if_name[] = "tap";
static const u_int8_t tun_ether_broadcast[ETHER_ADDR_LEN] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static const struct tun_shim_link_table tun_shim_links[TUN_SHIM_LINK_COUNT] = {
    /* Contract U-1, U-4: /dev/tunN and interface tunN, IFNET_FAMILY_TUN / IFT_OTHER. */
    [TUN_SHIM_LINK_IP] =
        {
            .cdevsw = &tun_ip_cdevsw,
            .node_format = "tun%d",
            .if_name = tun_ip_if_name,
            .if_name_len = sizeof(tun_ip_if_name) - 1,
            .init =
                {
                    .name = tun_ip_if_name,
                    .family = IFNET_FAMILY_TUN,
                    .type = IFT_OTHER,
                    .output = tun_if_output,
                    .demux = tun_if_demux,
                    .add_proto = tun_if_add_proto,
                    .del_proto = tun_if_del_proto,
                    .check_multi = NULL,
                    .framer = tun_if_framer,
                    .ioctl = tun_if_ioctl,
                    .set_bpf_tap = NULL,
                    .detach = tun_if_detached,
                    .event = NULL,
                    .broadcast_addr = NULL,
                    .broadcast_len = 0,
                },
        },
    /*
     * Contract TU-1, TU-4: /dev/tapN and interface tapN, IFNET_FAMILY_ETHERNET / IFT_ETHER,
     * with XNU's own Ethernet demux, protocol and framer functions; output, ioctl and detach
     * are the driver's.
     */
    [TUN_SHIM_LINK_ETHERNET] =
        {
            .cdevsw = &tun_ether_cdevsw,
            .node_format = "tap%d",
            .if_name = tun_ether_if_name,
            .if_name_len = sizeof(tun_ether_if_name) - 1,
            .init =
                {
                    .name = tun_ether_if_name,
                    .family = IFNET_FAMILY_ETHERNET,
                    .type = IFT_ETHER,
                    .output = tun_if_output,
                    .demux = ether_demux,
                    .add_proto = ether_add_proto,
                    .del_proto = ether_del_proto,
                    .check_multi = ether_check_multi,
                    .framer = ether_frameout,
                    .ioctl = tun_if_ioctl,
                    .set_bpf_tap = NULL,
                    .detach = tun_if_detached,
                    .event = NULL,
                    .broadcast_addr = tun_ether_broadcast,
                    .broadcast_len = ETHER_ADDR_LEN,
                },
        },
};

/* The table of `link`, or NULL for a kind the shim does not have. */
static const struct tun_shim_link_table *tun_shim_link(u_int32_t link)
{
    return link < TUN_SHIM_LINK_COUNT ? &tun_shim_links[link] : NULL;
}

int tun_shim_cdevsw_add(u_int32_t link)
{
    const struct tun_shim_link_table *t = tun_shim_link(link);
    return t ? cdevsw_add(TUN_CDEVSW_SEARCH_FROM, t->cdevsw) : -1;
}

int tun_shim_cdevsw_remove(u_int32_t link, int major)
{
    const struct tun_shim_link_table *t = tun_shim_link(link);
    return t ? cdevsw_remove(major, t->cdevsw) : -1;
}

/* Contract LD-2, U-1 (TU-1): the node, character device, root:wheel, mode 0600. */
void *tun_shim_make_node(u_int32_t link, int major, int unit)
{
    const struct tun_shim_link_table *t = tun_shim_link(link);
    return t ? devfs_make_node(makedev(major, unit), DEVFS_CHAR, UID_ROOT, GID_WHEEL, 0600,
                               t->node_format, unit)
             : NULL;
}

/* Contract U-4 (TU-4): the interface <name><unit>, unique id "<name><unit>". */
errno_t tun_shim_ifnet_allocate(u_int32_t link, u_int32_t unit, void *softc, ifnet_t *interface)
{
    const struct tun_shim_link_table *t = tun_shim_link(link);
    if (t == NULL || unit > 99 || t->if_name_len > 8) {
        return EINVAL;
    }
    /* ifnet_allocate copies the unique id; a stable one lets XNU recycle the same slot. */
    char uniqueid[12] = {0};
    u_int32_t len = 0;
    for (; len < t->if_name_len; len++) {
        uniqueid[len] = t->if_name[len];
    }
    if (unit >= 10) {
        uniqueid[len++] = (char)('0' + unit / 10);
    }
    uniqueid[len++] = (char)('0' + unit % 10);

    struct ifnet_init_params init = t->init;
    init.uniqueid = uniqueid;
    init.uniqueid_len = len;
    init.unit = unit;
    init.softc = softc;
    return ifnet_allocate(&init, interface);
}

/*
 * Contract TU-4: attaches an Ethernet interface with link address `mac` (ETHER_ADDR_LEN bytes):
 * AF_LINK, no name, six address bytes (XNU copies them from LLADDR, after sdl_nlen name bytes).
 */
errno_t tun_shim_attach_ethernet(ifnet_t interface, const u_int8_t *mac)
{
    struct sockaddr_dl sdl = {
        .sdl_len = sizeof(struct sockaddr_dl),
        .sdl_family = AF_LINK,
        .sdl_index = 0,
        .sdl_type = IFT_ETHER,
        .sdl_nlen = 0,
        .sdl_alen = ETHER_ADDR_LEN,
        .sdl_slen = 0,
    };
    for (u_int32_t i = 0; i < ETHER_ADDR_LEN; i++) {
        sdl.sdl_data[i] = (char)mac[i];
    }
    return ifnet_attach(interface, &sdl);
}

/*
 * Contract TK-1: KEV_DL_LINK_ON / KEV_DL_LINK_OFF for interface <name><unit> of kind `link`,
 * laid out as XNU's own drivers post it (bsd/net/if_fake.c interface_link_event): the event
 * header with the family as its first data word, then the unit and the name; 48 bytes.
 */
errno_t tun_shim_link_event(u_int32_t link, ifnet_t interface, u_int32_t unit, u_int32_t code)
{
    const struct tun_shim_link_table *t = tun_shim_link(link);
    if (t == NULL) {
        return EINVAL;
    }
    struct {
        struct kern_event_msg header;
        u_int32_t unit;
        char if_name[IFNAMSIZ];
    } event = {
        .header =
            {
                .total_size = sizeof(event),
                .vendor_code = KEV_VENDOR_APPLE,
                .kev_class = KEV_NETWORK_CLASS,
                .kev_subclass = KEV_DL_SUBCLASS,
                .id = 0,
                .event_code = code,
                .event_data = {t->init.family},
            },
        .unit = unit,
    };
    for (u_int32_t i = 0; i < t->if_name_len && i < IFNAMSIZ - 1; i++) {
        event.if_name[i] = t->if_name[i];
    }
    return ifnet_event(interface, &event.header);
}

/*
 * Contract U-8, LD-4: the plumbers through which the stack attaches IPv4 and IPv6 to a tun
 * interface when its first address of that family is added (kpi_protocol.c proto_plumb).
 */
errno_t tun_shim_register_plumber(protocol_family_t protocol)
{
    return proto_register_plumber(protocol, IFNET_FAMILY_TUN, tun_plumb_attach, tun_plumb_detach);
}

void tun_shim_unregister_plumber(protocol_family_t protocol)
{
    proto_unregister_plumber(protocol, IFNET_FAMILY_TUN);
}

/* Contract U-8: the protocol attached to one tun interface, called from its plumber. */
errno_t tun_shim_attach_protocol(ifnet_t interface, protocol_family_t protocol)
{
    struct ifnet_attach_proto_param param = {
        .demux_array = NULL,
        .demux_count = 0,
        .input = tun_proto_input,
        .pre_output = tun_proto_pre_output,
        .event = NULL,
        .ioctl = NULL,
        .detached = NULL,
        .resolve = NULL,
        .send_arp = NULL,
    };
    return ifnet_attach_protocol(interface, protocol, &param);
}

void tun_shim_log(const char *message, size_t length)
{
    printf("tunnel: %.*s\n", (int)length, message);
}

void tun_shim_panic(const char *message, size_t length)
{
    panic("tunnel: %.*s", (int)length, message);
}

static kern_return_t tun_kmod_start(kmod_info_t *ki, void *data)
{
    (void)ki;
    (void)data;
    return tun_driver_start();
}

static kern_return_t tun_kmod_stop(kmod_info_t *ki, void *data)
{
    (void)ki;
    (void)data;
    return tun_driver_stop();
}

/* The loader fills in address, size and hdr_size (docs/kext-build.md section 6). */
__attribute__((visibility("default"))) kmod_info_t kmod_info = {
    .next = NULL,
    .info_version = KMOD_INFO_VERSION,
    .id = 0xFFFFFFFFu,
    .name = TUN_BUNDLE_ID,
    .version = TUN_BUNDLE_VERSION,
    .reference_count = -1,
    .reference_list = NULL,
    .address = 0,
    .size = 0,
    .hdr_size = 0,
    .start = tun_kmod_start,
    .stop = tun_kmod_stop,
};
