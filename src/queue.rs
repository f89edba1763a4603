//! The per-unit output queue: packets the stack sent, waiting for a reader.
//!
//! A fixed ring of `TUN_QLEN` slots: O(1) push and pop, no allocation per packet, FIFO order
//! (OUT-3), and the limit counts packets, not bytes.

use crate::kpi::addr::SockAddr;
use crate::kpi::mbuf::Mbuf;
use crate::limits::TUN_QLEN;

/// A packet waiting to be read, with what the framing needs to build its prefix.
pub struct QueuedPacket {
    /// The bare packet (no prefix).
    pub packet: Mbuf,
    /// `AF_INET` or `AF_INET6`.
    pub family: u32,
    /// Where the stack sent it.
    pub dest: SockAddr,
}

/// A bounded FIFO of packets.
pub struct PacketQueue {
    slots: [Option<QueuedPacket>; TUN_QLEN],
    head: usize,
    len: usize,
}

impl PacketQueue {
    /// An empty queue.
    pub const fn new() -> PacketQueue {
        PacketQueue {
            slots: [const { None }; TUN_QLEN],
            head: 0,
            len: 0,
        }
    }

    /// Packets queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no packet is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the queue holds `TUN_QLEN` packets.
    pub fn is_full(&self) -> bool {
        self.len == TUN_QLEN
    }

    /// Appends at the tail; gives the packet back if the queue is full.
    pub fn push(&mut self, item: QueuedPacket) -> Result<(), QueuedPacket> {
        if self.is_full() {
            return Err(item);
        }
        let tail = (self.head + self.len) % TUN_QLEN;
        self.slots[tail] = Some(item);
        self.len += 1;
        Ok(())
    }

    /// Takes the packet at the head.
    pub fn pop(&mut self) -> Option<QueuedPacket> {
        if self.len == 0 {
            return None;
        }
        let item = self.slots[self.head].take();
        self.head = (self.head + 1) % TUN_QLEN;
        self.len -= 1;
        item
    }

    /// The packet at the head, if any.
    pub fn peek(&self) -> Option<&QueuedPacket> {
        if self.len == 0 {
            None
        } else {
            self.slots[self.head].as_ref()
        }
    }

    /// Frees every queued packet.
    pub fn purge(&mut self) {
        while self.pop().is_some() {}
        self.head = 0;
    }
}

impl Default for PacketQueue {
    fn default() -> Self {
        PacketQueue::new()
    }
}
