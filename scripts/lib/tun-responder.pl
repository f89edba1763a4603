#!/usr/bin/perl
# The device side of scripts/selftest.sh: opens the first free /dev/tunN and answers the ICMP echo
# requests (IPv4 and IPv6) that the stack routes into tunN, by writing the replies back into the
# device, as a VPN client would. It checks the device contract on the way (docs/tun-contract.md):
# raw framing after open (TUNGIFHEAD 0, the family from the version nibble), FIONREAD equal to the
# framed length of the packet read next, TUNSIFHEAD(1) then the 4-byte AF header (2 or 30) on
# reads and writes, and a write of neither IPv4 nor IPv6 refused with EAFNOSUPPORT (W6, F-2).
#
# Only core Perl 5.18 (macOS 10.13 ships 5.18.2; 10.14/10.15 5.18.4; 11+ 5.28 and later).
#
#   perl tun-responder.pl --dev-dir DIR --status FILE --peer4 ADDR --peer6 ADDR
#                         [--ioctl bsd|linux|none] [--max-seconds N]
#
# --ioctl bsd:   the Darwin ioctl numbers (a real Mac).
# --ioctl linux: the same commands in the Linux encoding, for tests/tunnel-sim's FUSE device files:
#                same group, number and size, the direction bits translated (what
#                tests/tunnel-sim/src/ioctl_map.rs bsd_to_linux does; its server maps them back).
# --ioctl none:  no ioctls; the ioctl checks are reported as skipped.
#
# Signals: USR1 = "the interface is configured": one bad raw write, then TUNSIFHEAD(1), one bad
# AF-header write, and AF-header framing from then on. USR2 = drain the queue and report.
# TERM/INT = report, close the device, exit. The state goes to FILE as key=value lines (written
# atomically), read by selftest.sh. Bounded by --max-seconds (default 120).
use strict;
use warnings;
use Fcntl qw(O_RDWR);
use POSIX qw(EAFNOSUPPORT EBUSY ENXIO ENOENT EACCES EINTR);

my %opt = (ioctl => 'bsd', 'max-seconds' => 120, units => 16);
while (@ARGV) {
    my $k = shift @ARGV;
    $k =~ s/^--// or die "tun-responder: unexpected argument $k\n";
    $opt{$k} = shift @ARGV;
}
for my $k (qw(dev-dir status peer4 peer6)) {
    defined $opt{$k} or die "tun-responder: --$k is required\n";
}

# BSD ioctl numbers (docs/tun-contract.md, IO-2 table).
my %BSD = (TUNSIFHEAD => 0x80047460, TUNGIFHEAD => 0x40047461, FIONREAD => 0x4004667f);

# bsd_to_linux: tests/tunnel-sim/src/ioctl_map.rs, written out: size and low 16 bits kept, BSD's
# IOC_IN (bit 31) becomes Linux _IOC_WRITE (bit 30), IOC_OUT (bit 30) becomes _IOC_READ (bit 31).
sub bsd_to_linux {
    my ($cmd) = @_;
    my $size = ($cmd >> 16) & 0x1fff;
    my $dir = 0;
    $dir |= 1 << 30 if $cmd & 0x80000000;
    $dir |= 2 << 30 if $cmd & 0x40000000;
    return $dir | ($size << 16) | ($cmd & 0xffff);
}

sub request {
    my ($name) = @_;
    return $opt{ioctl} eq 'linux' ? bsd_to_linux($BSD{$name}) : $BSD{$name};
}

if (($opt{'print-ioctl-map'} // '') eq '1') {
    printf "%s 0x%08x 0x%08x\n", $_, $BSD{$_}, bsd_to_linux($BSD{$_}) for sort keys %BSD;
    exit 0;
}

my %st = (
    state => 'starting', seq => 0, ioctl => $opt{ioctl},
    read_packets => 0, read_bytes => 0, written_packets => 0, written_bytes => 0,
    echo4 => 0, echo6 => 0, other => 0, raw_reads4 => 0, raw_reads6 => 0, af_reads4 => 0, af_reads6 => 0,
    fionread_checked => 0, fionread_bad => '', framing_bad => '', write_bad => '',
);

sub report {
    my $f = $opt{status};
    $st{seq}++;
    open(my $o, '>', "$f.tmp") or return;
    print $o "$_=$st{$_}\n" for sort keys %st;
    close $o;
    rename "$f.tmp", $f;
}

sub note {
    my ($key, $text) = @_;
    $st{$key} .= ($st{$key} eq '' ? '' : '; ') . $text;
}

# The signals selftest.sh sends, handled from the start (their default action would end the process).
my ($switch, $want_report, $stop) = (0, 0, 0);
$SIG{USR1} = sub { $switch = 1 };
$SIG{USR2} = sub { $want_report = 1 };
$SIG{TERM} = $SIG{INT} = $SIG{HUP} = sub { $stop = 1 };

# --- open the first free unit ---------------------------------------------------------------------
my ($fh, $unit, @tried);
for my $u (0 .. $opt{units} - 1) {
    my $path = "$opt{'dev-dir'}/tun$u";
    if (sysopen(my $h, $path, O_RDWR)) {
        ($fh, $unit) = ($h, $u);
        last;
    }
    my $e = $! + 0;
    push @tried, "$path: $!";
    last if $e == ENOENT;    # no more units
    next if $e == EBUSY || $e == ENXIO;
    last if $e == EACCES;
}
unless ($fh) {
    $st{state} = 'error';
    $st{error} = 'no free /dev/tunN (' . join(', ', @tried) . ')';
    report();
    exit 2;
}
binmode $fh;
$st{unit} = $unit;
$st{device} = "$opt{'dev-dir'}/tun$unit";

# int_ioctl NAME [VALUE]: an ioctl with an int argument; the int afterwards, or undef (with $!).
sub int_ioctl {
    my ($name, $value) = @_;
    my $buf = pack('l', $value // 0);
    my $r = ioctl($fh, request($name), $buf);
    return defined $r ? unpack('l', $buf) : undef;
}

my $use_ioctl = $opt{ioctl} ne 'none';
if ($use_ioctl) {
    my $h = int_ioctl('TUNGIFHEAD');
    $st{head_at_open} = defined $h ? $h : "error: $!";
    my $n = int_ioctl('FIONREAD');
    $st{fionread_at_open} = defined $n ? $n : "error: $!";
}
my $af_mode = 0;
$st{state} = 'open';
report();

# --- packets ------------------------------------------------------------------------------------
sub checksum {
    my ($data) = @_;
    $data .= "\0" if length($data) % 2;
    my $sum = 0;
    $sum += $_ for unpack('n*', $data);
    $sum = ($sum & 0xffff) + ($sum >> 16) while $sum >> 16;
    return ~$sum & 0xffff;
}

sub ip4_text { join '.', unpack('C4', $_[0]) }

sub ip6_bytes {
    my ($text) = @_;
    my ($head, $tail) = split /::/, $text, 2;
    my @h = length($head // '') ? split(/:/, $head) : ();
    my @t = defined $tail && length $tail ? split(/:/, $tail) : ();
    my @all = (@h, (defined $tail ? ('0') x (8 - @h - @t) : ()), @t);
    return pack('n8', map { hex } @all);
}
my $peer4 = pack('C4', split /\./, $opt{peer4});
my $peer6 = ip6_bytes($opt{peer6});

# reply_to PACKET: the echo reply for an echo request to our peer addresses, or undef.
sub reply_to {
    my ($p) = @_;
    my $v = ord(substr($p, 0, 1)) >> 4;
    if ($v == 4 && length($p) >= 28) {
        my $ihl = (ord(substr($p, 0, 1)) & 0xf) * 4;
        my $total = unpack('n', substr($p, 2, 2));
        return undef if $total > length($p) || $ihl < 20 || $total < $ihl + 8;
        return undef if ord(substr($p, 9, 1)) != 1 || substr($p, 16, 4) ne $peer4;
        return undef if ord(substr($p, $ihl, 1)) != 8;    # ICMP echo request
        my $hdr = substr($p, 0, $ihl);
        substr($hdr, 8, 1) = chr(64);                    # TTL
        substr($hdr, 10, 2) = "\0\0";
        my ($src, $dst) = (substr($hdr, 12, 4), substr($hdr, 16, 4));
        substr($hdr, 12, 8) = $dst . $src;
        substr($hdr, 10, 2) = pack('n', checksum($hdr));
        my $icmp = substr($p, $ihl, $total - $ihl);
        substr($icmp, 0, 1) = chr(0);                    # echo reply
        substr($icmp, 2, 2) = "\0\0";
        substr($icmp, 2, 2) = pack('n', checksum($icmp));
        $st{echo4}++;
        return ($hdr . $icmp, 4);
    }
    if ($v == 6 && length($p) >= 48) {
        my $plen = unpack('n', substr($p, 4, 2));
        return undef if 40 + $plen > length($p) || $plen < 8;
        return undef if ord(substr($p, 6, 1)) != 58 || substr($p, 24, 16) ne $peer6;
        return undef if ord(substr($p, 40, 1)) != 128;   # ICMPv6 echo request
        my ($src, $dst) = (substr($p, 8, 16), substr($p, 24, 16));
        my $icmp = substr($p, 40, $plen);
        substr($icmp, 0, 1) = chr(129);                  # echo reply
        substr($icmp, 2, 2) = "\0\0";
        my $pseudo = $dst . $src . pack('N', $plen) . "\0\0\0" . chr(58);
        substr($icmp, 2, 2) = pack('n', checksum($pseudo . $icmp));
        my $hdr = substr($p, 0, 8) . $dst . $src;
        substr($hdr, 7, 1) = chr(64);                    # hop limit
        $st{echo6}++;
        return ($hdr . $icmp, 6);
    }
    return undef;
}

# send_packet PACKET VERSION: one write, framed for the current mode.
sub send_packet {
    my ($p, $v) = @_;
    my $frame = $af_mode ? pack('N', $v == 6 ? 30 : 2) . $p : $p;
    my $n = syswrite($fh, $frame);
    if (!defined $n || $n != length $frame) {
        note('write_bad', 'reply write ' . (defined $n ? "returned $n of " . length($frame) : "failed: $!"));
        return;
    }
    $st{written_packets}++;
    $st{written_bytes} += length $p;
}

# handle_one: reads one packet (select said readable), checks FIONREAD and the framing, answers.
sub handle_one {
    my $expect;
    if ($use_ioctl) {
        $expect = int_ioctl('FIONREAD');
        note('fionread_bad', "FIONREAD failed: $!") unless defined $expect;
    }
    my $buf = '';
    my $n = sysread($fh, $buf, 65535 + 4);
    if (!defined $n) {
        return 0 if $! + 0 == EINTR;
        note('framing_bad', "read failed: $!");
        return 0;
    }
    return 0 if $n == 0;
    if (defined $expect) {
        $st{fionread_checked}++;
        note('fionread_bad', "FIONREAD said $expect, the read gave $n") if $expect != $n;
    }
    my $p = $buf;
    my $v = ord(substr($p, 0, 1)) >> 4;
    if ($af_mode) {
        my $af = $n >= 4 ? unpack('N', substr($buf, 0, 4)) : -1;
        $p = substr($buf, 4);
        $v = length $p ? ord(substr($p, 0, 1)) >> 4 : 0;
        my $want = $v == 6 ? 30 : $v == 4 ? 2 : -2;
        note('framing_bad', "AF header $af for an IPv$v packet") if $af != $want;
        $st{$v == 6 ? 'af_reads6' : 'af_reads4'}++ if $af == $want;
    } else {
        if ($v == 4 || $v == 6) { $st{"raw_reads$v"}++ }
        else { note('framing_bad', sprintf('raw read starting with 0x%02x, neither IPv4 nor IPv6', ord($p))) }
    }
    $st{read_packets}++;
    $st{read_bytes} += length $p;
    my ($reply, $rv) = reply_to($p);
    if (defined $reply) { send_packet($reply, $rv) }
    else { $st{other}++ }
    return 1;
}

sub readable {
    my ($timeout) = @_;
    my $rin = '';
    vec($rin, fileno($fh), 1) = 1;
    my $n = select(my $rout = $rin, undef, undef, $timeout);
    return $n > 0;
}

sub drain {
    my $guard = 0;
    while (readable(0) && $guard++ < 1000) { handle_one() }
    if ($use_ioctl) {
        my $left = int_ioctl('FIONREAD');
        $st{fionread_after_drain} = defined $left ? $left : "error: $!";
    }
}

# bad_write LABEL FRAME: a write the driver must refuse with EAFNOSUPPORT.
sub bad_write {
    my ($label, $frame) = @_;
    my $n = syswrite($fh, $frame);
    if (defined $n) { $st{$label} = "accepted ($n bytes)" }
    elsif ($! + 0 == EAFNOSUPPORT) { $st{$label} = 'EAFNOSUPPORT' }
    else { $st{$label} = 'errno ' . ($! + 0) . " ($!)" }
}

my $deadline = time + $opt{'max-seconds'};
while (!$stop) {
    if (time > $deadline) {
        $st{error} = "no TERM within $opt{'max-seconds'} s";
        last;
    }
    if ($switch) {
        $switch = 0;
        # A raw write whose version nibble is 5 (W6), then AF-header mode (F-1), then a header of 99 (F-2).
        bad_write('bad_raw_write', "\x50" . ("\0" x 39));
        if ($use_ioctl) {
            my $r = int_ioctl('TUNSIFHEAD', 1);
            $st{tunsifhead} = defined $r ? 'ok' : "error: $!";
            if (defined $r) {
                $af_mode = 1;
                my $h = int_ioctl('TUNGIFHEAD');
                $st{head_after_set} = defined $h ? $h : "error: $!";
                bad_write('bad_af_write', pack('N', 99) . "\x45" . ("\0" x 19));
            }
        }
        $st{state} = $af_mode ? 'af' : 'open';
        $st{switched} = 1;
        report();
    }
    if ($want_report) {
        $want_report = 0;
        drain();
        report();
    }
    handle_one() if readable(0.2);
}
drain();
close $fh;
$st{state} = 'closed' unless $st{error};
report();
exit 0;
