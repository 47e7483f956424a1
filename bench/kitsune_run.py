#!/usr/bin/env python3
"""Runs Kitsune-py over a capture and prints its timings and detection figures as one JSON object.

Kitsune-py is not part of fleetward: it is imported from the checkout named by $KITSUNE_PY (or --kitsune).
This driver is fleetward's own; it times what the recorded run beside the splice
(kitsune-py-run-mirai-splice.json) timed: the constructor (tshark parsing into a .tsv and setup), the packet
loop, the feature extractor and KitNET separately, and the three KitNET phases (feature mapping, autoencoder
training, execution). Detection figures use the same definitions as fleetward's detect.Evaluate, on the packets
after both grace periods: AUC by ranks (ties share their average rank), EER at the exact ROC point where the
false positive and false negative rates are closest, and TPR at 1% and 0.1% FPR with the threshold set so that
at most floor(fpr * benign) benign packets score above it.

Usage: kitsune_run.py --pcap F --labels F [--fm 5000] [--ad 20000] [--max-ae 10] [--scores out.csv]
       kitsune_run.py --evaluate scores.csv --labels F [--fm 5000] [--ad 20000]
Progress goes to stderr (Kitsune-py's own prints included); only the JSON goes to stdout.
"""

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types

import numpy as np


def load_kitsune(root):
    """Imports Kitsune-py's Kitsune class from the checkout at root and says which AfterImage it uses."""
    if not os.path.isfile(os.path.join(root, "Kitsune.py")) or not os.path.isfile(os.path.join(root, "netStat.py")):
        sys.exit(f"kitsune_run: {root} is not a Kitsune-py checkout (no Kitsune.py and netStat.py)")
    sys.path.insert(0, os.path.abspath(root))
    # netStat.py calls pyximport.install() before importing AfterImage. pyximport only compiles .pyx
    # modules, so AfterImage.py is imported as pure Python either way; without Cython a no-op stand-in
    # lets the import go through.
    pyx = "Cython pyximport (compiles nothing: AfterImage is a .py module)"
    try:
        import pyximport  # noqa: F401
    except ImportError:
        stub = types.ModuleType("pyximport")
        stub.install = lambda *a, **k: None
        sys.modules["pyximport"] = stub
        pyx = "no Cython: pyximport stand-in that does nothing"
    with contextlib.redirect_stdout(sys.stderr):
        from Kitsune import Kitsune
    af = sys.modules.get("AfterImage")
    kind = "compiled" if af is not None and not af.__file__.endswith(".py") else "pure Python"
    return Kitsune, f"{kind} {os.path.basename(af.__file__) if af else '?'}; {pyx}"


def git_commit(root):
    try:
        return subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def read_labels(path):
    with open(path) as f:
        return np.array([int(line.strip()) for line in f if line.strip()], dtype=bool)


def evaluate(scores, malicious):
    """Returns the detection figures of scores against malicious (both numpy arrays of one length)."""
    nb, nm = int((~malicious).sum()), int(malicious.sum())
    ev = {"benign": nb, "malicious": nm}
    if nb == 0 or nm == 0:
        return ev
    order = np.argsort(scores, kind="mergesort")
    s, bad = scores[order], malicious[order]
    # Average rank (1-based) of each run of tied scores.
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    ends = np.r_[starts[1:], len(s)]
    avg = (starts + ends + 1) / 2.0
    ranks = np.repeat(avg, ends - starts)
    ev["auc"] = float((ranks[bad].sum() - nm * (nm + 1) / 2.0) / (nm * nb))
    # ROC from the highest threshold down, one point per distinct score.
    tp = np.add.reduceat(bad.astype(np.int64), starts)[::-1].cumsum()
    fp = np.add.reduceat((~bad).astype(np.int64), starts)[::-1].cumsum()
    fpr, fnr = fp / nb, 1 - tp / nm
    i = int(np.argmin(np.abs(fpr - fnr)))
    ev["eer"] = float((fpr[i] + fnr[i]) / 2)
    benign_desc = np.sort(scores[~malicious])[::-1]
    mal = scores[malicious]
    for name, rate in (("0.001", 0.001), ("0.01", 0.01)):
        thr = benign_desc[min(int(np.floor(rate * nb)), nb - 1)]
        ev[f"tpr_at_fpr_{name}"] = float((mal > thr).sum() / nm)
        ev[f"threshold_at_fpr_{name}"] = float(thr)
    return ev


def run(args, Kitsune):
    """Runs Kitsune-py over args.pcap and returns (per-packet scores, timings)."""
    clock = time.perf_counter
    # Kitsune-py writes its tshark .tsv beside the capture, which may be read-only: work on a copy.
    work = tempfile.mkdtemp(prefix="kitsune-run-")
    try:
        pcap = os.path.join(work, os.path.basename(args.pcap))
        shutil.copyfile(args.pcap, pcap)
        with contextlib.redirect_stdout(sys.stderr):
            t = clock()
            k = Kitsune(pcap, np.inf, args.max_ae, args.fm, args.ad)
            init_s = clock() - t
        fe, kn = k.FE, k.AnomDetector
        parser = fe.parse_type
        # Phases by packet index, as KitNET counts them: the first fm packets build the feature map, the
        # next ad+1 train the autoencoders (KitNET trains while n_trained <= fm+ad), the rest are scored.
        bounds = (args.fm, args.fm + args.ad + 1)
        phase_s = [0.0, 0.0, 0.0]
        phase_n = [0, 0, 0]
        scores = []
        fe_s = kn_s = 0.0
        n = 0
        with contextlib.redirect_stdout(sys.stderr):
            start = clock()
            while True:
                t0 = clock()
                x = fe.get_next_vector()
                t1 = clock()
                if len(x) == 0:
                    break
                score = kn.process(x)
                t2 = clock()
                fe_s += t1 - t0
                kn_s += t2 - t1
                ph = 0 if n < bounds[0] else 1 if n < bounds[1] else 2
                phase_s[ph] += t2 - t0
                phase_n[ph] += 1
                scores.append(score)
                n += 1
                if n % 10000 == 0:
                    print(f"kitsune-py: {n} packets, {n / (clock() - start):.0f} packets/s", file=sys.stderr)
            loop_s = clock() - start
    finally:
        shutil.rmtree(work, ignore_errors=True)
    names = ("fm", "ad", "exec")
    timing = {
        "packets": n,
        "parser": parser,
        "init_s": init_s,
        "loop_wall_s": loop_s,
        "overall_pps": n / loop_s,
        "with_init_pps": n / (init_s + loop_s),
        "fe_s": fe_s,
        "kitnet_s": kn_s,
        "fe_pps": n / fe_s,
        "phase_s": dict(zip(names, phase_s)),
        "phase_packets": dict(zip(names, phase_n)),
        "phase_pps": {nm: (c / s if s else 0.0) for nm, c, s in zip(names, phase_n, phase_s)},
        "n_autoencoders": len(kn.ensembleLayer),
    }
    return np.array(scores, dtype=float), timing


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kitsune", default=os.environ.get("KITSUNE_PY", ""), help="Kitsune-py checkout ($KITSUNE_PY)")
    ap.add_argument("--pcap")
    ap.add_argument("--labels", required=True, help="one 0/1 label per packet, in capture order")
    ap.add_argument("--fm", type=int, default=5000, help="feature-mapping grace period (packets)")
    ap.add_argument("--ad", type=int, default=20000, help="anomaly-detector grace period (packets)")
    ap.add_argument("--max-ae", type=int, default=10, help="largest autoencoder (inputs)")
    ap.add_argument("--scores", help="write idx,rmse per packet here")
    ap.add_argument("--evaluate", metavar="SCORES_CSV", help="only evaluate an earlier idx,rmse file")
    args = ap.parse_args()
    # A SIGTERM (bench/kitsune.sh interrupted) unwinds like an exception, so the copied capture is removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    labels = read_labels(args.labels)
    out = {"fm_grace": args.fm, "ad_grace": args.ad, "max_ae": args.max_ae}
    if args.evaluate:
        scores = np.loadtxt(args.evaluate, delimiter=",", skiprows=1, usecols=1)
        out["scores_file"] = args.evaluate
    else:
        if not args.pcap:
            sys.exit("kitsune_run: --pcap is required (or --evaluate)")
        if not args.kitsune:
            sys.exit("kitsune_run: set KITSUNE_PY (or --kitsune) to a Kitsune-py checkout")
        Kitsune, afterimage = load_kitsune(args.kitsune)
        scores, timing = run(args, Kitsune)
        out.update(file=args.pcap, **timing)
        out["setup"] = {
            "kitsune_py": os.path.abspath(args.kitsune),
            "kitsune_py_commit": git_commit(args.kitsune),
            "afterimage": afterimage,
            "python": platform.python_version(),
            "numpy": np.__version__,
            "cpus_allowed": len(os.sched_getaffinity(0)),
        }
        if args.scores:
            with open(args.scores, "w") as f:
                f.write("idx,rmse\n")
                f.writelines(f"{i},{s!r}\n" for i, s in enumerate(scores))
    if len(scores) != len(labels):
        sys.exit(f"kitsune_run: {len(scores)} scores but {len(labels)} labels")
    scored = slice(args.fm + args.ad + 1, None)
    out["evaluation"] = evaluate(scores[scored], labels[scored])
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
