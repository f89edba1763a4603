/*
 * kpi.h: the project's own declarations of the XNU kernel programming interface (KPI) subset
 * that tunnel.kext uses. No macOS SDK or xnu header is needed or copied: prototypes follow
 * Apple's public KPI headers (named per block), and the layout of every struct shared with the
 * kernel is the x86_64 (LP64) one, pinned below with _Static_assert and on the Rust side with
 * static_assertions. Compiled with -nostdinc, so the fixed-width types are defined here too.
 *
 * The same header is used for the kernel build (clang -mkernel) and for the host build that
 * links the shim against the simulated kernel (tests/xnu-sim), and bindgen reads it for Rust.
 */
#ifndef TUNNEL_KPI_H
#define TUNNEL_KPI_H

/* ---- basic types (Darwin LP64) ---- */
typedef signed char int8_t;
typedef unsigned char u_int8_t;
typedef unsigned char uint8_t;
typedef short int16_t;
typedef unsigned short u_int16_t;
typedef unsigned short uint16_t;
typedef int int32_t;
typedef unsigned int u_int32_t;
typedef unsigned int uint32_t;
typedef long long int64_t;
typedef unsigned long long u_int64_t;
typedef unsigned long long uint64_t;
typedef unsigned long size_t;
typedef long ssize_t;
typedef unsigned long uintptr_t;
typedef long long user_ssize_t;
typedef unsigned long u_long;
typedef char *caddr_t;
typedef int errno_t;
typedef int kern_return_t;
typedef int32_t dev_t; /* major in bits 24..31, minor in 0..23 */
typedef int32_t pid_t;
typedef u_int32_t uid_t;
typedef u_int32_t gid_t;
typedef long long off_t;
typedef u_int8_t sa_family_t;
typedef u_int32_t protocol_family_t;
typedef u_int32_t ifnet_family_t;
typedef u_int64_t vm_address_t;
typedef u_int64_t vm_size_t;

#define NULL ((void *)0)
#define KERN_SUCCESS 0
#define KERN_FAILURE 5

/* ---- errno (xnu bsd/sys/errno.h, KERNEL values) ---- */
#define EPERM 1
#define ENOENT 2
#define ESRCH 3
#define EINTR 4
#define EIO 5
#define ENXIO 6
#define ENOMEM 12
#define EACCES 13
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define ENODEV 19
#define EINVAL 22
#define ENOTTY 25
#define EAGAIN 35
#define EWOULDBLOCK EAGAIN
#define EPROTOTYPE 41
#define EAFNOSUPPORT 47
#define ENOBUFS 55
#define EHOSTDOWN 64
#define EOPNOTSUPP 102
#define ERESTART (-1)
#define EJUSTRETURN (-2)

/* ---- opaque kernel objects ---- */
struct proc;
struct uio;
struct ifnet;
struct __mbuf;
struct tty;
struct buf;
struct lck_grp;
struct lck_grp_attr;
struct lck_attr;
struct lck_mtx;
struct socket;
struct ifaddr;
struct kev_msg;
struct sockaddr_dl;
typedef struct proc *proc_t;
typedef struct uio *uio_t;
typedef struct ifnet *ifnet_t;
typedef struct __mbuf *mbuf_t;
typedef struct lck_grp lck_grp_t;
typedef struct lck_grp_attr lck_grp_attr_t;
typedef struct lck_attr lck_attr_t;
typedef struct lck_mtx lck_mtx_t;
typedef struct socket *socket_t;
typedef struct ifaddr *ifaddr_t;

/*
 * struct selinfo is kernel-private (xnu bsd/sys/select.h) yet selrecord() needs storage owned
 * by the caller. Its size has changed between releases (64 bytes on current x86_64 xnu), so the
 * driver reserves TUN_SELINFO_BYTES zeroed bytes, 16-byte aligned: a known compatibility risk.
 */
struct selinfo;
#define TUN_SELINFO_BYTES 128

struct timespec {
    long tv_sec;
    long tv_nsec;
};

struct sockaddr {
    u_int8_t sa_len;
    sa_family_t sa_family;
    char sa_data[14];
};

/* ---- kmod_info (xnu osfmk/mach/kmod.h) ---- */
#define KMOD_MAX_NAME 64
#define KMOD_INFO_VERSION 1
#pragma pack(push, 4)
typedef struct kmod_info {
    struct kmod_info *next;
    int32_t info_version;
    u_int32_t id;
    char name[KMOD_MAX_NAME];
    char version[KMOD_MAX_NAME];
    int32_t reference_count;
    void *reference_list;
    vm_address_t address;
    vm_size_t size;
    vm_size_t hdr_size;
    kern_return_t (*start)(struct kmod_info *ki, void *data);
    kern_return_t (*stop)(struct kmod_info *ki, void *data);
} kmod_info_t;
#pragma pack(pop)

/* ---- character devices (xnu bsd/sys/conf.h) ---- */
typedef int d_open_t(dev_t dev, int oflags, int devtype, struct proc *p);
typedef int d_close_t(dev_t dev, int fflag, int devtype, struct proc *p);
typedef int d_rdwr_t(dev_t dev, struct uio *uio, int ioflag);
typedef int d_ioctl_t(dev_t dev, u_long cmd, caddr_t data, int fflag, struct proc *p);
typedef int d_stop_t(struct tty *tp, int rw);
typedef int d_reset_t(int uban);
typedef int d_select_t(dev_t dev, int which, void *wql, struct proc *p);
/* xnu bsd/sys/conf.h: d_mmap is int (void); mmap(2) of a character device answers
 * ENODEV before any driver is called (bsd/kern/kern_mman.c mmap). */
typedef int d_mmap_t(void);
typedef void d_strategy_t(struct buf *bp);

struct cdevsw {
    d_open_t *d_open;
    d_close_t *d_close;
    d_rdwr_t *d_read;
    d_rdwr_t *d_write;
    d_ioctl_t *d_ioctl;
    d_stop_t *d_stop;
    d_reset_t *d_reset;
    struct tty **d_ttys;
    d_select_t *d_select;
    d_mmap_t *d_mmap;
    d_strategy_t *d_strategy;
    void *d_reserved_1;
    void *d_reserved_2;
    int d_type;
};

#define D_TTY 3
#define S_IFCHR 0020000
#define FREAD 0x0001
#define FWRITE 0x0002
#define IO_NDELAY 0x0010
#define major(d) (((u_int32_t)(d) >> 24) & 0xff)
#define minor(d) ((d) & 0xffffff)
#define makedev(x, y) ((dev_t)(((x) << 24) | (y)))

int cdevsw_add(int index, const struct cdevsw *csw);
int cdevsw_remove(int index, const struct cdevsw *csw);

/* ---- devfs (xnu bsd/miscfs/devfs/devfs.h) ---- */
#define DEVFS_CHAR 0
#define UID_ROOT 0
#define GID_WHEEL 0
void *devfs_make_node(dev_t dev, int chrblk, uid_t uid, gid_t gid, int perms, const char *fmt, ...);
void devfs_remove(void *handle);

/* ---- locks (xnu osfmk/kern/locks.h) ---- */
lck_grp_attr_t *lck_grp_attr_alloc_init(void);
void lck_grp_attr_free(lck_grp_attr_t *attr);
lck_grp_t *lck_grp_alloc_init(const char *grp_name, lck_grp_attr_t *attr);
void lck_grp_free(lck_grp_t *grp);
lck_attr_t *lck_attr_alloc_init(void);
void lck_attr_free(lck_attr_t *attr);
lck_mtx_t *lck_mtx_alloc_init(lck_grp_t *grp, lck_attr_t *attr);
void lck_mtx_free(lck_mtx_t *lck, lck_grp_t *grp);
void lck_mtx_lock(lck_mtx_t *lck);
void lck_mtx_unlock(lck_mtx_t *lck);

/* ---- sleep / wakeup (xnu bsd/sys/proc.h, bsd/kern/kern_synch.c) ---- */
#define PCATCH 0x100
#define PDROP 0x400
#define PSPIN 0x800
#define PZERO 22
int msleep(void *chan, lck_mtx_t *mtx, int pri, const char *wmesg, struct timespec *ts);
void wakeup(void *chan);
void wakeup_one(caddr_t chan);

/* ---- select (xnu bsd/sys/select.h) ---- */
void selrecord(proc_t selector, struct selinfo *sip, void *wql);
void selwakeup(struct selinfo *sip);
void selthreadclear(struct selinfo *sip);

/* ---- processes (xnu bsd/sys/proc.h) ---- */
#define SIGIO 23
int proc_selfpid(void);
int proc_pid(proc_t p);
pid_t proc_selfpgrpid(void);
proc_t current_proc(void);
proc_t proc_find(int pid);
int proc_rele(proc_t p);
void proc_signal(int pid, int signum);

/* ---- uio (xnu bsd/sys/uio.h) ---- */
#define UIO_READ 0
#define UIO_WRITE 1
int uiomove(const char *cp, int n, struct uio *uio);
user_ssize_t uio_resid(uio_t a_uio);

/* Copies to the current process's memory (xnu bsd/sys/systm.h, libkern/copyio.h; exported by
 * Libkern.exports, com.apple.kpi.libkern, at 10.13.0 and today): EFAULT on a bad address. */
typedef u_int64_t user_addr_t;
int copyout(const void *kaddr, user_addr_t udaddr, size_t len);
int uio_rw(uio_t a_uio);

/* ---- mbufs (xnu bsd/sys/kpi_mbuf.h) ---- */
typedef enum { MBUF_WAITOK = 0, MBUF_DONTWAIT = 1 } mbuf_how_t;
errno_t mbuf_allocpacket(mbuf_how_t how, size_t packetlen, unsigned int *maxchunks, mbuf_t *mbuf);
void *mbuf_data(mbuf_t mbuf);
size_t mbuf_len(mbuf_t mbuf);
void mbuf_setlen(mbuf_t mbuf, size_t len);
mbuf_t mbuf_next(mbuf_t mbuf);
mbuf_t mbuf_nextpkt(mbuf_t mbuf);
void mbuf_setnextpkt(mbuf_t mbuf, mbuf_t nextpkt);
size_t mbuf_pkthdr_len(mbuf_t mbuf);
void mbuf_pkthdr_setlen(mbuf_t mbuf, size_t len);
errno_t mbuf_pkthdr_setrcvif(mbuf_t mbuf, ifnet_t ifp);
void *mbuf_pkthdr_header(mbuf_t mbuf);
void mbuf_pkthdr_setheader(mbuf_t mbuf, void *header);
errno_t mbuf_copydata(mbuf_t mbuf, size_t offset, size_t length, void *out_data);
errno_t mbuf_prepend(mbuf_t *mbuf, size_t len, mbuf_how_t how);
void mbuf_adj(mbuf_t mbuf, int len);
void mbuf_freem(mbuf_t mbuf);
size_t mbuf_maxlen(const mbuf_t mbuf);

/* mbuf tags (xnu bsd/sys/kpi_mbuf.h, since 10.4): data that travels with a packet header. */
typedef u_int32_t mbuf_tag_id_t;
typedef u_int16_t mbuf_tag_type_t;
errno_t mbuf_tag_id_find(const char *string, mbuf_tag_id_t *out_id);
errno_t mbuf_tag_allocate(mbuf_t mbuf, mbuf_tag_id_t module_id, mbuf_tag_type_t type,
                          size_t length, mbuf_how_t how, void **data_p);
errno_t mbuf_tag_find(mbuf_t mbuf, mbuf_tag_id_t module_id, mbuf_tag_type_t type,
                      size_t *length, void **data_p);

/* ---- network interfaces (xnu bsd/net/kpi_interface.h) ---- */
#define IFF_UP 0x1
#define IFF_BROADCAST 0x2
#define IFF_POINTOPOINT 0x10
#define IFF_RUNNING 0x40
#define IFF_NOARP 0x80
#define IFF_PROMISC 0x100
#define IFF_ALLMULTI 0x200
#define IFF_SIMPLEX 0x800
#define IFF_MULTICAST 0x8000
#define IFT_OTHER 0x1
#define IFT_ETHER 0x6
#define IFNET_FAMILY_ETHERNET 2
#define IFNET_FAMILY_TUN 4
#define AF_INET 2
#define AF_INET6 30
#define PF_INET AF_INET
#define PF_INET6 AF_INET6
#define DLT_NULL 0
#define DLT_EN10MB 1
#define IFNAMSIZ 16

struct ifnet_demux_desc {
    u_int32_t type;
    void *data;
    u_int32_t datalen;
};

struct ifnet_stat_increment_param {
    u_int32_t packets_in;
    u_int32_t bytes_in;
    u_int32_t errors_in;
    u_int32_t packets_out;
    u_int32_t bytes_out;
    u_int32_t errors_out;
    u_int32_t collisions;
    u_int32_t dropped;
};

typedef errno_t (*ifnet_output_func)(ifnet_t interface, mbuf_t data);
typedef errno_t (*ifnet_ioctl_func)(ifnet_t interface, unsigned long cmd, void *data);
typedef errno_t (*ifnet_demux_func)(ifnet_t interface, mbuf_t packet, char *frame_header,
                                    protocol_family_t *protocol_family);
typedef errno_t (*ifnet_add_proto_func)(ifnet_t interface, protocol_family_t protocol_family,
                                        const struct ifnet_demux_desc *demux_array,
                                        u_int32_t demux_count);
typedef errno_t (*ifnet_del_proto_func)(ifnet_t interface, protocol_family_t protocol_family);
typedef errno_t (*ifnet_check_multi)(ifnet_t interface, const struct sockaddr *mcast);
typedef errno_t (*ifnet_framer_func)(ifnet_t interface, mbuf_t *packet,
                                     const struct sockaddr *dest, const char *dest_linkaddr,
                                     const char *frame_type);
typedef errno_t (*ifnet_set_bpf_tap)(ifnet_t interface, int mode, void *callback);
typedef void (*ifnet_detached_func)(ifnet_t interface);
typedef void (*ifnet_event_func)(ifnet_t interface, const struct kev_msg *msg);

struct ifnet_init_params {
    const void *uniqueid;
    u_int32_t uniqueid_len;
    const char *name;
    u_int32_t unit;
    ifnet_family_t family;
    u_int32_t type;
    ifnet_output_func output;
    ifnet_demux_func demux;
    ifnet_add_proto_func add_proto;
    ifnet_del_proto_func del_proto;
    ifnet_check_multi check_multi;
    ifnet_framer_func framer;
    void *softc;
    ifnet_ioctl_func ioctl;
    ifnet_set_bpf_tap set_bpf_tap;
    ifnet_detached_func detach;
    ifnet_event_func event;
    const void *broadcast_addr;
    u_int32_t broadcast_len;
};

typedef errno_t (*proto_media_input)(ifnet_t ifp, protocol_family_t protocol, mbuf_t packet,
                                     char *header);
typedef errno_t (*proto_media_preout)(ifnet_t ifp, protocol_family_t protocol, mbuf_t *packet,
                                      const struct sockaddr *dest, void *route, char *frame_type,
                                      char *link_layer_dest);
typedef void (*proto_media_event)(ifnet_t ifp, protocol_family_t protocol,
                                  const struct kev_msg *event);
typedef errno_t (*proto_media_ioctl)(ifnet_t ifp, protocol_family_t protocol, unsigned long command,
                                     void *argument);
typedef errno_t (*proto_media_detached)(ifnet_t ifp, protocol_family_t protocol);
typedef errno_t (*proto_media_resolve_multi)(ifnet_t ifp, const struct sockaddr *proto_addr,
                                             struct sockaddr_dl *out_ll, size_t ll_len);
typedef errno_t (*proto_media_send_arp)(ifnet_t ifp, u_int16_t arpop,
                                        const struct sockaddr_dl *sender_hw,
                                        const struct sockaddr *sender_proto,
                                        const struct sockaddr_dl *target_hw,
                                        const struct sockaddr *target_proto);

struct ifnet_attach_proto_param {
    struct ifnet_demux_desc *demux_array;
    u_int32_t demux_count;
    proto_media_input input;
    proto_media_preout pre_output;
    proto_media_event event;
    proto_media_ioctl ioctl;
    proto_media_detached detached;
    proto_media_resolve_multi resolve;
    proto_media_send_arp send_arp;
};

errno_t ifnet_allocate(const struct ifnet_init_params *init, ifnet_t *interface);
errno_t ifnet_attach(ifnet_t interface, const struct sockaddr_dl *ll_addr);
errno_t ifnet_detach(ifnet_t interface);
errno_t ifnet_reference(ifnet_t interface);
errno_t ifnet_release(ifnet_t interface);
void *ifnet_softc(ifnet_t interface);
u_int16_t ifnet_flags(ifnet_t interface);
errno_t ifnet_set_flags(ifnet_t interface, u_int16_t new_flags, u_int16_t mask);
u_int32_t ifnet_mtu(ifnet_t interface);
errno_t ifnet_set_mtu(ifnet_t interface, u_int32_t mtu);
u_int32_t ifnet_unit(ifnet_t interface);
errno_t ifnet_input(ifnet_t interface, mbuf_t first_packet,
                    const struct ifnet_stat_increment_param *stats);
errno_t ifnet_stat_increment(ifnet_t interface, const struct ifnet_stat_increment_param *counts);
errno_t ifnet_stat_increment_in(ifnet_t interface, u_int32_t packets_in, u_int32_t bytes_in,
                                u_int32_t errors_in);
errno_t ifnet_stat_increment_out(ifnet_t interface, u_int32_t packets_out, u_int32_t bytes_out,
                                 u_int32_t errors_out);
errno_t ifnet_attach_protocol(ifnet_t interface, protocol_family_t protocol_family,
                              const struct ifnet_attach_proto_param *proto_details);
errno_t ifnet_detach_protocol(ifnet_t interface, protocol_family_t protocol_family);
errno_t proto_input(protocol_family_t protocol, mbuf_t packet);

/* ---- protocol plumbers (xnu bsd/net/kpi_protocol.h, since 10.4) ---- */
typedef errno_t (*proto_plumb_handler)(ifnet_t ifp, protocol_family_t protocol);
typedef void (*proto_unplumb_handler)(ifnet_t ifp, protocol_family_t protocol);
errno_t proto_register_plumber(protocol_family_t proto_fam, ifnet_family_t if_fam,
                               proto_plumb_handler plumb, proto_unplumb_handler unplumb);
void proto_unregister_plumber(protocol_family_t proto_fam, ifnet_family_t if_fam);
u_int64_t ifnet_baudrate(ifnet_t interface);
errno_t ifnet_set_baudrate(ifnet_t interface, u_int64_t baudrate);

/* ---- interface addresses (xnu bsd/net/kpi_interface.h) ---- */
#define AF_LINK 18
/* The list is NULL-terminated; each entry is referenced until ifnet_free_address_list. */
errno_t ifnet_get_address_list(ifnet_t interface, ifaddr_t **addresses);
void ifnet_free_address_list(ifaddr_t *addresses);
errno_t ifaddr_address(ifaddr_t ifaddr, struct sockaddr *out_addr, u_int32_t addr_size);

/* ---- Ethernet interfaces (tap units; docs/tap-contract.md TU-4, TA-1, TA-4, TK-1) ----
 * Checked against Apple's headers at xnu-4570 (macOS 10.13) and today: the ether_* functions
 * are declared in bsd/net/if_ether.h (on macOS KPI_INTERFACE_EMBEDDED is 0, so ether_frameout
 * has the five-argument ifnet_framer_func shape, never the prepend/postpend variant);
 * ifnet_set_lladdr, ifnet_lladdr_copy_bytes, ifnet_set_hdrlen and ifnet_event in
 * bsd/net/kpi_interface.h; struct sockaddr_dl in bsd/net/if_dl.h; struct kern_event_msg and
 * KEV_VENDOR_APPLE/KEV_NETWORK_CLASS in bsd/sys/kern_event.h; struct net_event_data in
 * bsd/net/if_var.h; KEV_DL_* in bsd/net/if.h; uuid_generate_random in bsd/uuid/uuid.h
 * (libkern/uuid/uuid.c). All are exported on x86_64 and arm64 by BSDKernel.exports
 * (com.apple.kpi.bsd) or Libkern.exports (com.apple.kpi.libkern), at 10.13.0 too. */
#define ETHER_ADDR_LEN 6
#define ETHER_HDR_LEN 14
#define AF_UNSPEC 0

/* Link-level sockaddr: sdl_data holds sdl_nlen name bytes, then sdl_alen address bytes. */
struct sockaddr_dl {
    u_int8_t sdl_len;
    u_int8_t sdl_family;
    u_int16_t sdl_index;
    u_int8_t sdl_type;
    u_int8_t sdl_nlen;
    u_int8_t sdl_alen;
    u_int8_t sdl_slen;
    char sdl_data[12];
};

errno_t ether_demux(ifnet_t interface, mbuf_t packet, char *header, protocol_family_t *protocol);
errno_t ether_add_proto(ifnet_t interface, protocol_family_t protocol,
                        const struct ifnet_demux_desc *demux_list, u_int32_t demux_count);
errno_t ether_del_proto(ifnet_t interface, protocol_family_t protocol);
errno_t ether_frameout(ifnet_t interface, mbuf_t *packet, const struct sockaddr *dest,
                       const char *dest_lladdr, const char *frame_type);
errno_t ether_check_multi(ifnet_t ifp, const struct sockaddr *multicast);

errno_t ifnet_set_lladdr(ifnet_t interface, const void *lladdr, size_t lladdr_len);
errno_t ifnet_lladdr_copy_bytes(ifnet_t interface, void *lladdr, size_t length);
errno_t ifnet_set_hdrlen(ifnet_t interface, u_int8_t hdrlen);

/* Kernel events: a kern_event_msg header (KEV_MSG_HEADER_SIZE bytes) and its data words. */
#define KEV_VENDOR_APPLE 1
#define KEV_NETWORK_CLASS 1
#define KEV_DL_SUBCLASS 2
#define KEV_DL_LINK_OFF 12
#define KEV_DL_LINK_ON 13
#define KEV_DL_LINK_ADDRESS_CHANGED 16
#define KEV_MSG_HEADER_SIZE 24
struct kern_event_msg {
    u_int32_t total_size;
    u_int32_t vendor_code;
    u_int32_t kev_class;
    u_int32_t kev_subclass;
    u_int32_t id;
    u_int32_t event_code;
    u_int32_t event_data[1];
};
struct net_event_data {
    u_int32_t if_family;
    u_int32_t if_unit;
    char if_name[IFNAMSIZ];
};
errno_t ifnet_event(ifnet_t interface, struct kern_event_msg *event_ptr);

/* UUIDs (bsd/uuid/uuid.h): 16 random bytes with the version and variant bits set. */
typedef unsigned char uuid_t[16];
void uuid_generate_random(uuid_t out);

/* ---- in-kernel sockets (xnu bsd/sys/kpi_socket.h), used to remove addresses ---- */
#define SOCK_DGRAM 2
typedef void (*sock_upcall)(socket_t so, void *cookie, int waitf);
errno_t sock_socket(int domain, int type, int protocol, sock_upcall callback, void *cookie,
                    socket_t *new_so);
errno_t sock_ioctl(socket_t so, unsigned long request, void *argp);
void sock_close(socket_t so);

/* ---- BPF (xnu bsd/net/bpf.h) ---- */
void bpfattach(ifnet_t interface, u_int32_t data_link_type, u_int32_t header_length);
void bpf_tap_in(ifnet_t interface, u_int32_t dlt, mbuf_t packet, void *header,
                size_t header_len);
void bpf_tap_out(ifnet_t interface, u_int32_t dlt, mbuf_t packet, void *header,
                 size_t header_len);

/* ---- logging (xnu libkern) ---- */
int printf(const char *format, ...);
void panic(const char *format, ...) __attribute__((noreturn));

/* ---- layouts shared with the kernel (docs/kext-build.md section 7) ---- */
#define TUN_OFFSET_OF(type, field) __builtin_offsetof(type, field)
_Static_assert(sizeof(kmod_info_t) == 196, "kmod_info_t is 196 bytes");
_Static_assert(TUN_OFFSET_OF(kmod_info_t, name) == 16, "kmod_info_t.name");
_Static_assert(TUN_OFFSET_OF(kmod_info_t, version) == 80, "kmod_info_t.version");
_Static_assert(TUN_OFFSET_OF(kmod_info_t, reference_list) == 148, "kmod_info_t.reference_list");
_Static_assert(TUN_OFFSET_OF(kmod_info_t, address) == 156, "kmod_info_t.address");
_Static_assert(TUN_OFFSET_OF(kmod_info_t, start) == 180, "kmod_info_t.start");
_Static_assert(TUN_OFFSET_OF(kmod_info_t, stop) == 188, "kmod_info_t.stop");
_Static_assert(sizeof(struct cdevsw) == 112, "struct cdevsw is 112 bytes");
_Static_assert(TUN_OFFSET_OF(struct cdevsw, d_select) == 64, "cdevsw.d_select");
_Static_assert(TUN_OFFSET_OF(struct cdevsw, d_type) == 104, "cdevsw.d_type");
_Static_assert(sizeof(struct ifnet_init_params) == 144, "ifnet_init_params is 144 bytes");
_Static_assert(TUN_OFFSET_OF(struct ifnet_init_params, name) == 16, "init.name");
_Static_assert(TUN_OFFSET_OF(struct ifnet_init_params, unit) == 24, "init.unit");
_Static_assert(TUN_OFFSET_OF(struct ifnet_init_params, family) == 28, "init.family");
_Static_assert(TUN_OFFSET_OF(struct ifnet_init_params, type) == 32, "init.type");
_Static_assert(TUN_OFFSET_OF(struct ifnet_init_params, output) == 40, "init.output");
_Static_assert(TUN_OFFSET_OF(struct ifnet_init_params, softc) == 88, "init.softc");
_Static_assert(TUN_OFFSET_OF(struct ifnet_init_params, ioctl) == 96, "init.ioctl");
_Static_assert(TUN_OFFSET_OF(struct ifnet_init_params, detach) == 112, "init.detach");
_Static_assert(TUN_OFFSET_OF(struct ifnet_init_params, broadcast_len) == 136, "init.broadcast_len");
_Static_assert(sizeof(struct ifnet_attach_proto_param) == 72, "ifnet_attach_proto_param is 72 bytes");
_Static_assert(TUN_OFFSET_OF(struct ifnet_attach_proto_param, input) == 16, "proto.input");
_Static_assert(TUN_OFFSET_OF(struct ifnet_attach_proto_param, pre_output) == 24, "proto.pre_output");
_Static_assert(sizeof(struct ifnet_stat_increment_param) == 32, "stat_increment_param is 32 bytes");
_Static_assert(sizeof(struct sockaddr) == 16, "struct sockaddr is 16 bytes");
_Static_assert(sizeof(struct sockaddr_dl) == 20, "struct sockaddr_dl is 20 bytes");
_Static_assert(TUN_OFFSET_OF(struct sockaddr_dl, sdl_data) == 8, "sockaddr_dl.sdl_data");
_Static_assert(sizeof(struct kern_event_msg) == 28, "struct kern_event_msg is 28 bytes");
_Static_assert(TUN_OFFSET_OF(struct kern_event_msg, event_data) == KEV_MSG_HEADER_SIZE,
               "kern_event_msg.event_data");
_Static_assert(sizeof(struct net_event_data) == 24, "struct net_event_data is 24 bytes");
_Static_assert(sizeof(struct timespec) == 16, "struct timespec is 16 bytes");
_Static_assert(sizeof(dev_t) == 4, "Darwin dev_t is 32 bits");

/* ---- the Rust core's entry points (src/entry.rs), wired up by the shim ---- */
/* The link kinds the shim has a table for; src/link.rs describes each to the core. */
enum tun_shim_link {
    TUN_SHIM_LINK_IP = 0,
    TUN_SHIM_LINK_ETHERNET = 1,
    TUN_SHIM_LINK_COUNT
};

kern_return_t tun_driver_start(void);
kern_return_t tun_driver_stop(void);
/* The cdevsw entry points, with the link kind of the cdevsw the kernel called through. */
int tun_dev_open(u_int32_t link, dev_t dev, int oflags, int devtype, struct proc *p);
int tun_dev_close(u_int32_t link, dev_t dev, int fflag, int devtype, struct proc *p);
int tun_dev_read(u_int32_t link, dev_t dev, struct uio *uio, int ioflag);
int tun_dev_write(u_int32_t link, dev_t dev, struct uio *uio, int ioflag);
int tun_dev_ioctl(u_int32_t link, dev_t dev, u_long cmd, caddr_t data, int fflag, struct proc *p);
int tun_dev_select(u_int32_t link, dev_t dev, int which, void *wql, struct proc *p);
errno_t tun_if_output(ifnet_t interface, mbuf_t data);
errno_t tun_if_demux(ifnet_t interface, mbuf_t packet, char *frame_header,
                     protocol_family_t *protocol_family);
errno_t tun_if_add_proto(ifnet_t interface, protocol_family_t protocol_family,
                         const struct ifnet_demux_desc *demux_array, u_int32_t demux_count);
errno_t tun_if_del_proto(ifnet_t interface, protocol_family_t protocol_family);
errno_t tun_if_ioctl(ifnet_t interface, unsigned long cmd, void *data);
errno_t tun_if_framer(ifnet_t interface, mbuf_t *packet, const struct sockaddr *dest,
                      const char *dest_linkaddr, const char *frame_type);
void tun_if_detached(ifnet_t interface);
errno_t tun_plumb_attach(ifnet_t ifp, protocol_family_t protocol);
void tun_plumb_detach(ifnet_t ifp, protocol_family_t protocol);
errno_t tun_proto_input(ifnet_t ifp, protocol_family_t protocol, mbuf_t packet, char *header);
errno_t tun_proto_pre_output(ifnet_t ifp, protocol_family_t protocol, mbuf_t *packet,
                             const struct sockaddr *dest, void *route, char *frame_type,
                             char *link_layer_dest);

/* ---- the shim's services to the Rust core (shim/shim.c) ---- */
int tun_shim_cdevsw_add(u_int32_t link);
int tun_shim_cdevsw_remove(u_int32_t link, int major);
void *tun_shim_make_node(u_int32_t link, int major, int unit);
errno_t tun_shim_ifnet_allocate(u_int32_t link, u_int32_t unit, void *softc, ifnet_t *interface);
errno_t tun_shim_attach_ethernet(ifnet_t interface, const u_int8_t *mac);
errno_t tun_shim_link_event(u_int32_t link, ifnet_t interface, u_int32_t unit, u_int32_t code);
errno_t tun_shim_attach_protocol(ifnet_t interface, protocol_family_t protocol);
errno_t tun_shim_register_plumber(protocol_family_t protocol);
void tun_shim_unregister_plumber(protocol_family_t protocol);
void tun_shim_log(const char *message, size_t length);
void tun_shim_panic(const char *message, size_t length) __attribute__((noreturn));

#endif /* TUNNEL_KPI_H */
