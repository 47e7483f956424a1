// Package detect watches network traffic for attacks on IoT devices that
// cannot run an agent. It reads pcap and pcapng captures (Reader), decodes
// frames without allocating (Decoder), computes for each packet the 100
// damped incremental statistics of Kitsune's AfterImage (AfterImage) and
// scores them with Kitsune's autoencoder ensemble (KitNET); ScoreCapture
// runs the three over a file and Evaluate measures the scores against
// labels (Mirsky et al., "Kitsune: An Ensemble of Autoencoders for Online
// Network Intrusion Detection", NDSS 2018).
//
// # Features
//
// For each window λ in {5, 3, 1, 0.1, 0.01} (a stream's weight halves after
// 1/λ seconds without traffic), in this order, each group listing its five
// windows before the next group starts, as Kitsune-py's netStat does:
//
//   - source MAC-IP (3 per window): weight, mean and variance of the frame
//     lengths sent by the pair (source MAC, source host);
//   - channel (7 per window): weight, mean and variance of the lengths sent
//     by the source host to anyone, then radius, magnitude, covariance and
//     Pearson correlation of the source and destination hosts' streams;
//   - channel jitter (3 per window): weight, mean and variance of the time
//     between packets from the source host to the destination host;
//   - socket (7 per window): as channel, for (host, port) endpoints.
//
// What Kitsune's columns call "std" hold the variance: Kitsune-py never takes
// the square root there, and these features keep its values so that models
// and thresholds carry over. The radius is sqrt(σa⁴+σb⁴) for the same reason.
//
// The statistics follow Kitsune-py's AfterImage.py step by step, quirks
// included, because a model trained on its features must see the same
// inputs: the weight starts at 1e-20; a link's covariance is updated once
// when the link is made and twice on every later packet of the pair (once
// through the stream's list of links, once directly); every link of the
// sending stream is updated with each packet; a host sending to itself uses
// its first link of any kind; means, variances and deviations are cached
// until the next insert. On the first 2,000 packets of Kitsune's Mirai
// capture every value matches Kitsune-py's within 1e-6 relative, except 5
// of 40,000 Pearson correlations whose streams' variances are rounding
// noise (see TestAfterImageMatchesKitsuneOnTheFirst2000MiraiPackets).
//
// # Parsing choices
//
// Kitsune-py reads captures through tshark's field export; the Decoder gives
// the same fields from the frame itself:
//
//   - The time is tshark's frame.time_epoch: the float64 nearest to the
//     decimal capture time (not the sum of seconds and fraction, which can
//     be an ulp off and moves the fastest window's decay by more than 1e-6).
//   - The length is frame.len, the length on the wire, not the captured
//     length: the reference capture is cut to 200 bytes per packet.
//   - The hosts are the first IPv4 header's addresses, else the first
//     IPv6 header's (tshark's first occurrence, so the outer header of a
//     tunnel). ARP packets take the sender and target protocol addresses;
//     frames with neither IP nor ARP take the Ethernet addresses as hosts.
//   - TCP and UDP ports are one kind of endpoint: Kitsune concatenates
//     tcp.srcport and udp.srcport, so TCP port 53 and UDP port 53 of a host
//     are the same socket. A TCP header cut by the snaplen still gives its
//     ports, as tshark reports them.
//   - An ICMP error (types 3, 4, 5, 11, 12; ICMPv6 1 to 4) carries the ports
//     of the packet it quotes, as tshark reports them in tcp.srcport: the
//     quoted packet's source port, which is the ICMP receiver's own port.
//     Other ICMPv4 packets are the socket "host, icmp"; ICMPv6 packets that
//     quote nothing have no ports (tshark's icmp.type is ICMPv4 only).
//   - ARP sockets are the Ethernet addresses, as in Kitsune.
//   - Packets with a host but no ports (other IP protocols, ICMPv6) are the
//     socket "host, no port".
//
// Deliberate differences, none of which occurs in the reference packets:
//
//   - Stream keys are typed values, not concatenated strings: Kitsune's
//     "192.168.2.1"+"11080" and "192.168.2.11"+"1080" are one socket there
//     and two here.
//   - IP fragments are counted and have no ports. tshark reassembles, so
//     it gives the last fragment of a datagram the datagram's ports; the
//     other fragments have none in both.
//   - Decay uses math.Exp2 where Kitsune-py calls C's pow(2, x); they can
//     differ in the last bit (see the pcc exception above).
//
// By default ScoreCapture departs from Kitsune twice (ScoreOptions.
// KitsuneLinks turns both off):
//
//   - AfterImage.OwnLinkOnly: a packet updates only its own host-pair and
//     socket-pair covariances, once. Kitsune updates every link of the
//     sender, which makes a scanner's packets cost time in proportion to
//     its peers; on the Mirai splice the own-link features are several
//     times faster (docs/BENCHMARKS.md).
//   - AfterImage.JitterRestart: a channel silent for longer than the
//     anomaly IdleGap (one minute) restarts its jitter statistics as a new
//     channel's. Kitsune inserts the whole silence as one inter-arrival
//     time, which for minutes dominates the slow windows' mean and
//     variance, so that a quiet network, or one device switched off for a
//     while, came back as dozens of high alerts on every device
//     (TestQuietPeriodsDoNotAlert; docs/DETECTION.md, "Quiet periods").
//
// # KitNET
//
// KitNET follows Kitsune-py's KitNET, corClust and dA: the feature map is
// learnt from the first FMGrace+1 vectors (incremental correlation, single
// linkage, clusters split from the top until none is larger than
// MaxAutoencoderSize), the autoencoders from the next ADGrace (one gradient
// step per vector, tied weights, inputs scaled by the minimum and maximum
// seen while training), and scores are the output autoencoder's RMSE over
// the ensemble's RMSEs. It differs in what does not change the method: the
// initial weights come from Go's PCG generator seeded with 1234, not
// NumPy's Mersenne Twister, and groups list their features in ascending
// order; on ties of single linkage the merge order may differ from SciPy's.
//
// # Bounded state
//
// Every stream remembers when it last sent or received. Evict removes the
// streams idle for longer than IdleTimeout (default one hour of capture
// time) with their links; Update calls it once per EvictInterval (five
// minutes) of capture time, so memory follows the number of streams active
// in the last hour, not all streams ever seen; and never more than
// MaxStreams (default 1,048,576, about 480 MB): a flood of spoofed sources
// pushes out the streams seen least recently (Shed counts them). After an
// hour the slowest window (λ = 0.01) has
// decayed a stream's weight by 2^-36 (one in 7e10), so a stream that comes
// back starts from a weight Kitsune's would hold to within 1e-10; its means
// and the covariance residues of its links start afresh.
package detect
