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
 * One static, zero-initialised object is given to cdevsw_add and to cdevsw_remove: removal
 * compares all 112 bytes, padding included (docs/kext-build.md section 7).
 */
static struct cdevsw tun_cdevsw = {
    .d_open = tun_dev_open,
    .d_close = tun_dev_close,
    .d_read = tun_dev_read,
    .d_write = tun_dev_write,
    .d_ioctl = tun_dev_ioctl,
    .d_stop = tun_no_stop,
    .d_reset = tun_no_reset,
    .d_ttys = NULL,
    .d_select = tun_dev_select,
    .d_mmap = tun_no_mmap,
    .d_strategy = tun_no_strategy,
    .d_reserved_1 = NULL,
    .d_reserved_2 = NULL,
    .d_type = 0,
};

int tun_shim_cdevsw_add(void) { return cdevsw_add(TUN_CDEVSW_SEARCH_FROM, &tun_cdevsw); }

int tun_shim_cdevsw_remove(int major) { return cdevsw_remove(major, &tun_cdevsw); }

/* Contract LD-2 and U-1: /dev/tunN, character device, root:wheel, mode 0600. */
void *tun_shim_make_node(int major, int unit)
{
    return devfs_make_node(makedev(major, unit), DEVFS_CHAR, UID_ROOT, GID_WHEEL, 0600, "tun%d",
                           unit);
}

static const char tun_if_name[] = "tun";

/* Contract U-4: interface tunN, IFNET_FAMILY_TUN / IFT_OTHER, unique id "tunN". */
errno_t tun_shim_ifnet_allocate(u_int32_t unit, void *softc, ifnet_t *interface)
{
    /* ifnet_allocate copies the unique id; a stable one lets XNU recycle the same slot. */
    char uniqueid[8] = {'t', 'u', 'n', 0, 0, 0, 0, 0};
    u_int32_t len = 3;
    if (unit >= 10) {
        uniqueid[len++] = (char)('0' + unit / 10);
    }
    uniqueid[len++] = (char)('0' + unit % 10);

    struct ifnet_init_params init = {
        .uniqueid = uniqueid,
        .uniqueid_len = len,
        .name = tun_if_name,
        .unit = unit,
        .family = IFNET_FAMILY_TUN,
        .type = IFT_OTHER,
        .output = tun_if_output,
        .demux = tun_if_demux,
        .add_proto = tun_if_add_proto,
        .del_proto = tun_if_del_proto,
        .check_multi = NULL,
        .framer = tun_if_framer,
        .softc = softc,
        .ioctl = tun_if_ioctl,
        .set_bpf_tap = NULL,
        .detach = tun_if_detached,
        .event = NULL,
        .broadcast_addr = NULL,
        .broadcast_len = 0,
    };
    return ifnet_allocate(&init, interface);
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
