#!/usr/bin/env python3
"""Splits the instructions callgrind collected into the driver's own and the simulated kernel's.

Usage: callgrind_cost.py CALLGRIND_OUT PACKETS
Prints: total_per_packet driver_per_packet kernel_per_packet

The run collects only inside one driver entry point (--toggle-collect). Everything reached
through a call from driver code (the Rust core, whose symbols name `tunnel`, and the shim's
`tun_*` functions) to anything else is the kernel's: allocation, uiomove and its copy, locks,
ifnet_input, memcpy. The rest is the driver's own code, inlined library code included. (A
driver callback the kernel makes from inside a KPI call, such as demux from ifnet_input, is
counted with the kernel: a small overcount on the kernel's side.)
Needs an output written with --compress-strings=no --compress-pos=no.
"""
import sys


# Interface and protocol callbacks run inside KPI calls (demux and protocol input inside
# ifnet_input); callgrind does not keep call stacks, so they are counted with the kernel
# call that made them.
CALLBACKS = ("tun_if_", "tun_proto_", "tunnel::iface::")


def is_driver(fn):
    name = fn.split("'")[0].strip()
    if name.startswith(CALLBACKS):
        return False
    return "tunnel" in name or name.startswith("tun_")


def main():
    out, packets = sys.argv[1], int(sys.argv[2])
    total = 0
    into_kernel = 0
    fn = None
    cfn = None
    pending_call = False
    for line in open(out, errors="replace"):
        if line.startswith("fn="):
            fn = line[3:].strip()
        elif line.startswith("cfn="):
            cfn = line[4:].strip()
        elif line.startswith("calls="):
            pending_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            parts = line.split()
            cost = int(parts[1]) if len(parts) > 1 else 0
            if pending_call:
                if is_driver(fn) and not is_driver(cfn):
                    into_kernel += cost
                pending_call = False
            else:
                total += cost
    driver = total - into_kernel
    print(f"{total / packets:.0f} {driver / packets:.0f} {into_kernel / packets:.0f}")


if __name__ == "__main__":
    main()
