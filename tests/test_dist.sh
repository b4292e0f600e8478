#!/usr/bin/env bash
# Data parallelism (issue 18): `mpirun -np 2 jielong pretrain|sft` on a tiny model, against one process with the
# same global batch (--accum 2): losses within a stated bound; two runs with 2 ranks bitwise identical; reward/dpo
# (pairs and the split evaluation) and grpo/ppo (split rollouts, against `mpirun -np 1`: the same rewards) the
# same way; resume after a rank is killed (the resumed steps equal an uninterrupted run's, bit for bit); Ctrl-C
# (SIGINT to mpirun) stops every rank with a whole checkpoint; a rank that fails (a bad batch or rollout on rank 1
# only, JL_DIST_FAIL) or hangs (SIGSTOP, JL_DIST_TIMEOUT) stops the job with one message naming it and the
# checkpoint untouched; plain jielong links no MPI. Every stage: the all-reduce overlapped with the backward pass
# gives the bits of the one after it (JL_DIST_OVERLAP=0); ppo with a reward model: each rank scores its own
# rollouts, the same rewards as one rank. Then the sanitizer binary, if built (or JL_ASAN_BIN), runs a 2-rank
# pretrain and ppo with the all-reduce overlapped (OpenMPI's own allocations are not ours:
# ASAN_OPTIONS=detect_leaks=0 there; our code is leak-checked by the single-process cmocka tests).
# Run by tests/run.sh with JL_BIN (the jielong binary), JL_TMP (scratch) and JL_ROOT (the source tree).
set -u
JL=${JL_BIN:-build/jielong}
JL=$(cd "$(dirname "$JL")" && pwd)/$(basename "$JL")
ROOT=${JL_ROOT:-.}
ROOT=$(cd "$ROOT" && pwd)
W=${JL_TMP:-$(mktemp -d)}/dist
rm -rf "$W" && mkdir -p "$W"
cd "$W" || exit 1
ok() { echo "[       OK ] dist: $1"; }
die() { echo "[  FAILED  ] dist: $1"; [ -f "$W/log" ] && tail -20 "$W/log"; exit 1; }
command -v mpirun >/dev/null || die "mpirun not found: scripts/deps.sh installs openmpi-bin"
# OpenMPI refuses root without these; --oversubscribe: 2 ranks may share fewer cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
MPI="timeout 60 mpirun --host localhost:2 -np 2" MPI1="timeout 60 mpirun --host localhost:1 -np 1"
run() { local name=$1; shift; "$@" >"$W/log" 2>&1 || die "$name (exit $?): $*"; }
# The "KEY" values of a metrics file's step lines, one per line (17 significant digits as written).
field() { sed -n "s/.*\"step\":\([0-9]*\),\"$2\":\([-0-9.e+]*\).*/\1 \2/p" "$1"; }
# The same for a KEY anywhere in the step line.
any_field() { sed -n "s/.*\"step\":\([0-9]*\),.*\"$2\":\([-0-9.e+]*\).*/\1 \2/p" "$1"; }
# A number of the training state in a checkpoint's header (escaped JSON inside the safetensors metadata).
state_num() { grep -ao "\\\\\"$1\\\\\":[0-9]*" "$2" | head -1 | grep -o '[0-9]*$'; }
# Largest relative difference of two files of "step value" lines (same steps).
maxrel() { join <(sort -n "$1") <(sort -n "$2") |
    awk '{ d = $2 - $3; if (d < 0) d = -d; r = d / ($2 < 0 ? -$2 : $2); if (r > m) m = r; n++ }
         END { if (n == 0) print "none"; else printf "%.3g\n", m }'; }

# Largest absolute difference of the same.
maxabs() { join <(sort -n "$1") <(sort -n "$2") |
    awk '{ d = $2 - $3; if (d < 0) d = -d; if (d > m) m = d; n++ } END { if (n == 0) print "none"; else printf "%.3g\n", m }'; }

ldd "$JL" | grep -q libmpi && die "jielong links libmpi: a plain run would need an MPI runtime"
ok "plain jielong links no MPI (libmpi is loaded only under mpirun)"

# A fixed synthetic corpus (an LCG over a small grammar, integers exact in awk's doubles), not the README: the RL
# stages' 1-rank vs 2-rank difference depends on the starting model (see below), and the README changes with
# every commit, so figures measured on it moved from one sitting to the next.
awk 'BEGIN { split("the a one every some this that no", det, " "); split("small red quiet old bright slow warm tall", adj, " ")
  split("cat dog bird model rank batch step token layer river tree stone lamp door garden", noun, " ")
  split("sees keeps finds moves reads writes holds follows carries opens", verb, " ")
  split("on under near behind over beside", prep, " "); s = 12345
  for (out = 0; out < 60000; out += length(line) + 1) {
    line = ""
    for (k = 0; k < 4; k++) {
      s = (s * 69069 + 1) % 4294967296; d = det[int(s / 65536) % 8 + 1]; s = (s * 69069 + 1) % 4294967296
      a = adj[int(s / 65536) % 8 + 1]; s = (s * 69069 + 1) % 4294967296; n = noun[int(s / 65536) % 15 + 1]
      s = (s * 69069 + 1) % 4294967296; v = verb[int(s / 65536) % 10 + 1]; s = (s * 69069 + 1) % 4294967296
      p = prep[int(s / 65536) % 6 + 1]; s = (s * 69069 + 1) % 4294967296; m = noun[int(s / 65536) % 15 + 1]
      line = line (k ? " " : "") toupper(substr(d, 1, 1)) substr(d, 2) " " a " " n " " v " the " m " " p " the river."
    }
    print line
  } }' > corpus.txt
P="pretrain --data corpus.txt --depth 1 --context 32 --batch-size 4 --steps 12 --eval-every 6 --lr 3e-3 --threads 1
   --precision fp32"
run "pretrain, 1 process, accum 2" "$JL" $P --accum 2 --out p1
run "pretrain, 2 ranks" $MPI "$JL" $P --out p2
grep -q "rank 1" "$W/log" && die "rank 1 spoke in a successful run: $(grep "rank 1" "$W/log")"
[ "$(grep -c 'step 12: saved p2/model.safetensors' "$W/log")" = 1 ] || die "rank 0 alone reports and writes"
run "pretrain, 2 ranks again" $MPI "$JL" $P --out p2b
cmp -s p2/model.safetensors p2b/model.safetensors || die "two 2-rank runs differ"
cmp -s p2/metrics.jsonl p2b/metrics.jsonl && die "metrics identical including timings? (not a fresh run)"
ok "pretrain: two runs with 2 ranks are bitwise identical"
# the all-reduce overlapped with the backward pass (the default) sums the same buckets in the same order
JL_DIST_OVERLAP=0 run "pretrain, 2 ranks, all-reduce after the backward" $MPI "$JL" $P --out p2c
cmp -s p2/model.safetensors p2c/model.safetensors || die "the overlapped all-reduce changed the result"
grep -q '"allreduce_overlapped":' p2/metrics.jsonl || die "no allreduce_overlapped figure in the metrics"
ok "pretrain: the all-reduce overlapped with the backward pass gives the same bits as after it"
# ZeRO-1: each rank keeps the AdamW moments of its chunks, updates them and the parameters all-gather: the same
# bits (model, and the checkpoint, whose moments are gathered whole), half the moments per rank; a checkpoint of
# a --zero 1 run resumes without it, and the other way round, to the uninterrupted run's bits
run "pretrain, 2 ranks, --zero 1" $MPI "$JL" $P --zero 1 --out pz
cmp -s p2/model.safetensors pz/model.safetensors || die "--zero 1 changed the result"
cmp -s p2/checkpoint.safetensors pz/checkpoint.safetensors || die "--zero 1 changed the checkpoint (moments)"
grep -q "AdamW moments: .* MB on each rank" "$W/log" || die "--zero 1: the optimizer state per rank is not shown"
m0=$(any_field p2/metrics.jsonl adam_mb | head -1 | cut -d' ' -f2); mz=$(any_field pz/metrics.jsonl adam_mb | head -1 | cut -d' ' -f2)
awk -v a="$m0" -v b="$mz" 'BEGIN { exit !(a > 0 && b > 0.49 * a && b < 0.51 * a) }' ||
  die "--zero 1 on 2 ranks: AdamW moments $mz MB per rank, expected half of $m0"
run "pretrain, --zero 1, stopped" $MPI "$JL" $P --zero 1 --stop-after 5 --out pzr
run "pretrain, resumed without --zero" $MPI "$JL" $P --resume --out pzr
cmp -s p2/model.safetensors pzr/model.safetensors || die "a --zero 1 checkpoint resumed without it differs"
run "pretrain, stopped" $MPI "$JL" $P --stop-after 5 --out pzs
run "pretrain, resumed with --zero 1" $MPI "$JL" $P --zero 1 --resume --out pzs
cmp -s p2/model.safetensors pzs/model.safetensors || die "a checkpoint resumed with --zero 1 differs"
ok "pretrain --zero 1: the same bits (model, checkpoint, resumed either way), AdamW moments $mz MB per rank vs $m0"
# resume with another N, the global batch kept (2 ranks → 1 process with --accum 2): the data position carries over
run "pretrain, 2 ranks, stopped at 6" $MPI "$JL" $P --stop-after 6 --out pn
run "pretrain, resumed by 1 process, accum 2" "$JL" $P --accum 2 --resume --out pn
field pn/metrics.jsonl loss | awk '$1 > 6' > l1; field p2/metrics.jsonl loss | awk '$1 > 6' > l2
d=$(maxrel l1 l2); [ "$(wc -l < l1)" = 6 ] || die "resume on 1 process: expected steps 7..12, got $(wc -l < l1)"
awk -v d="$d" 'BEGIN { exit !(d != "none" && d < 1e-5) }' || die "resume on 1 process: steps 7..12 rel. diff $d > 1e-5"
ok "a 2-rank checkpoint resumed by 1 process with --accum 2: steps 7..12 within rel. $d of the 2-rank run (bound 1e-5)"
# the bound: the same global batch in a different summation order (measured: ~1e-8 relative on this model)
field p1/metrics.jsonl loss > l1; field p2/metrics.jsonl loss > l2
d=$(maxrel l1 l2); [ "$(wc -l < l1)" = 12 ] || die "expected 12 loss lines, got $(wc -l < l1)"
awk -v d="$d" 'BEGIN { exit !(d != "none" && d < 1e-5) }' || die "pretrain loss 2 ranks vs accum 2: rel. diff $d > 1e-5"
sed -n 's/.*"step":\([0-9]*\),"val_loss":\([-0-9.e+]*\).*/\1 \2/p' p1/metrics.jsonl > v1
sed -n 's/.*"step":\([0-9]*\),"val_loss":\([-0-9.e+]*\).*/\1 \2/p' p2/metrics.jsonl > v2
dv=$(maxrel v1 v2); awk -v d="$dv" 'BEGIN { exit !(d != "none" && d < 1e-5) }' || die "held-out loss rel. diff $dv"
ok "pretrain: 2 ranks vs 1 process with --accum 2: loss within rel. $d, held-out loss within $dv (bound 1e-5)"

for i in $(seq 1 24); do
  echo "{\"messages\":[{\"role\":\"user\",\"content\":\"What is $i plus $i?\"},{\"role\":\"assistant\",\"content\":\"It is $((i + i)).\"}]}"
done > chat.jsonl
S="sft --model p1/model.safetensors --data chat.jsonl --steps 6 --batch-size 2 --seq-len 32 --lr 2e-3 --threads 1
   --precision fp32 --eval-every 3"
run "sft, 1 process, accum 2" "$JL" $S --accum 2 --out s1
run "sft, 2 ranks" $MPI "$JL" $S --out s2
run "sft, 2 ranks again" $MPI "$JL" $S --out s2b
cmp -s s2/model.safetensors s2b/model.safetensors || die "two 2-rank sft runs differ"
field s1/metrics.jsonl loss > l1; field s2/metrics.jsonl loss > l2
d=$(maxrel l1 l2); [ "$(wc -l < l1)" = 6 ] || die "expected 6 sft loss lines"
awk -v d="$d" 'BEGIN { exit !(d != "none" && d < 1e-5) }' || die "sft loss 2 ranks vs accum 2: rel. diff $d > 1e-5"
ok "sft (packed rows): 2 ranks bitwise repeatable; vs 1 process with --accum 2 within rel. $d (bound 1e-5)"

# The stage's 2-rank run in ${1}2 again with the all-reduce after the backward pass (JL_DIST_OVERLAP=0): the
# overlapped one (the default, jl_trainer_sum_begin/end) sums the same buckets in the same order, so the same bits.
overlap_same() {
  JL_DIST_OVERLAP=0 run "$1, 2 ranks, all-reduce after the backward" $MPI "$JL" $2 --out ${1}2f
  cmp -s ${1}2/model.safetensors ${1}2f/model.safetensors || die "$1: the overlapped all-reduce changed the result"
  # the gradient norm too: clipping would hide a wrongly scaled gradient from the weights
  for key in loss grad_norm; do
    any_field ${1}2/metrics.jsonl $key | cmp -s - <(any_field ${1}2f/metrics.jsonl $key) ||
      die "$1: overlapped $key differs: $(paste <(any_field ${1}2/metrics.jsonl $key) <(any_field ${1}2f/metrics.jsonl $key))"
  done
  grep -q '"allreduce_overlapped":' ${1}2/metrics.jsonl || die "$1: no allreduce_overlapped figure (not overlapped?)"
  grep -q '"allreduce_overlapped":' ${1}2f/metrics.jsonl && die "$1: JL_DIST_OVERLAP=0 still overlapped"
  ok "$1: the all-reduce overlapped with the backward pass gives the same bits as after it"
}

# ---- pair stages: each rank takes --batch-size pairs of a global batch of batch × ranks ----
for i in $(seq 1 120); do
  p=$(printf "%03d" $((i * 37 % 1000)))
  echo "{\"prompt\":\"p\",\"chosen\":\"${p}a\",\"rejected\":\"${p}b\"}"
done > prefs.jsonl
for stage in dpo reward; do
  D="$stage --model p1/model.safetensors --data prefs.jsonl --steps 6 --lr 3e-3 --eval-fraction 0.2 --eval-every 3
     --threads 1 --precision fp32"
  run "$stage, 1 process, batch 8" "$JL" $D --batch-size 8 --out ${stage}1
  run "$stage, 2 ranks, batch 4" $MPI "$JL" $D --batch-size 4 --out ${stage}2
  field ${stage}1/metrics.jsonl loss > l1; field ${stage}2/metrics.jsonl loss > l2
  d=$(maxrel l1 l2); [ "$(wc -l < l1)" = 6 ] || die "expected 6 $stage loss lines"
  awk -v d="$d" 'BEGIN { exit !(d != "none" && d < 1e-5) }' || die "$stage loss 2×4 vs 1×8 pairs: rel. diff $d > 1e-5"
  # held-out pairs: batches dealt round the ranks, sums reduced: every pair counted once, the same figures
  field ${stage}1/metrics.jsonl eval_loss > v1; field ${stage}2/metrics.jsonl eval_loss > v2
  dv=$(maxrel v1 v2); [ "$(wc -l < v1)" = 3 ] || die "expected 3 $stage evaluations"
  awk -v d="$dv" 'BEGIN { exit !(d != "none" && d < 1e-5) }' || die "$stage held-out loss 2 vs 1: rel. diff $dv"
  [ "$(grep -o '"eval_pairs":[0-9]*' ${stage}2/metrics.jsonl | sort -u)" = '"eval_pairs":24' ] ||
    die "$stage: the ranks' held-out shares do not add up to the 24 pairs"
  ok "$stage: 2 ranks × 4 pairs vs 1 process × 8 pairs: loss within rel. $d, split held-out loss within $dv (bound 1e-5)"
  overlap_same $stage "$D --batch-size 4"
done

# ---- RL stages: each rank rolls out its share (--batch-size prompts × group), the rewards, log-probs and values
# are gathered (group normalisation, whitening see the whole batch), each rank computes its part of every minibatch
for i in $(seq 1 6); do echo "{\"prompt\":\"Say x $i\"}"; done > prompts.jsonl
G="grpo --model p1/model.safetensors --prompts prompts.jsonl --reward-fn length --group 4 --max-new-tokens 6
   --steps 4 --lr 5e-4 --epochs 2 --minibatches 2 --threads 1 --precision fp32"
R="ppo --model p1/model.safetensors --prompts prompts.jsonl --reward-fn length --max-new-tokens 6 --steps 4
   --lr 5e-4 --epochs 2 --minibatches 2 --whiten-rewards --threads 1 --precision fp32"
for stage in grpo ppo; do
  [ $stage = grpo ] && C=$G || C=$R
  [ $stage = grpo ] && b=2 || b=4
  # the reference is `mpirun -np 1`: under mpirun every rollout row samples from its own stream (a plain run keeps
  # one stream through the rows, as before), so the answers do not depend on the split
  run "$stage, 1 rank, batch $b" $MPI1 "$JL" $C --batch-size $b --out ${stage}1
  run "$stage, 2 ranks, batch $((b / 2))" $MPI "$JL" $C --batch-size $((b / 2)) --out ${stage}2
  run "$stage, 2 ranks again" $MPI "$JL" $C --batch-size $((b / 2)) --out ${stage}2b
  cmp -s ${stage}2/model.safetensors ${stage}2b/model.safetensors || die "two 2-rank $stage runs differ"
  field ${stage}1/metrics.jsonl loss > l1; field ${stage}2/metrics.jsonl loss > l2
  [ "$(wc -l < l1)" = 4 ] || die "expected 4 $stage loss lines"
  # absolute: the clipped-objective loss is near 0 (a relative bound would be noise). The ranks add their rows'
  # gradients in another order than one process (measured: gradients within 3e-8 after the first update); Adam's
  # first steps divide a near-cancelled gradient (~1e-9) by its own size, turning that into ~4e-6 of a weight, and
  # at --lr 3e-3 later updates then flip clipping decisions of the surrogate: step-4 losses differed from 5e-8 to
  # 8e-3 depending on the starting model alone (the README-trained one moved with every commit). At --lr 5e-4 no
  # clipping decision flips: measured at most 1.2e-7 at any step over six starting models and seeds.
  d=$(maxabs l1 l2)
  awk -v d="$d" 'BEGIN { exit !(d != "none" && d < 2e-6) }' || die "$stage loss 2 ranks vs 1: abs. diff $d > 2e-6: $(paste l1 l2)"
  sed -n 's/.*"step":\([0-9]*\),.*"reward":\([-0-9.e+]*\).*/\1 \2/p' ${stage}1/metrics.jsonl > r1
  sed -n 's/.*"step":\([0-9]*\),.*"reward":\([-0-9.e+]*\).*/\1 \2/p' ${stage}2/metrics.jsonl > r2
  [ "$(wc -l < r1)" = 4 ] && cmp -s r1 r2 || die "$stage rewards 2 ranks vs 1 differ (the same rollouts expected): $(paste r1 r2 | head -4)"
  ok "$stage: 2 ranks bitwise repeatable; vs 1 rank: the same rewards, loss of every step within abs. $d (bound 2e-6)"
  overlap_same $stage "$C --batch-size $((b / 2))"
done
run "ppo, 2 ranks, --zero 1" $MPI "$JL" $R --batch-size 2 --zero 1 --out ppoz
cmp -s ppo2/model.safetensors ppoz/model.safetensors && cmp -s ppo2/checkpoint.safetensors ppoz/checkpoint.safetensors ||
  die "ppo --zero 1 changed the result"
ok "ppo --zero 1 (the RL update path, with a value head): the same bits, model and checkpoint"

# the learnt judge (and a monitor and an anchor rule): each rank scores the rollouts it sampled, once, and the
# scores are gathered — the same rewards, bit for bit, as one rank scoring them all
M="ppo --model p1/model.safetensors --prompts prompts.jsonl --reward-model reward1 --monitor-fn length --anchor-fn
   length --max-new-tokens 6 --steps 3 --lr 5e-4 --minibatches 2 --whiten-rewards --threads 1 --precision fp32"
run "ppo with a reward model, 1 rank" $MPI1 "$JL" $M --batch-size 4 --out rm1
run "ppo with a reward model, 2 ranks" $MPI "$JL" $M --batch-size 2 --out rm2
for key in reward monitor_reward anchor_reward; do
  any_field rm1/metrics.jsonl $key > r1; any_field rm2/metrics.jsonl $key > r2
  [ "$(wc -l < r1)" = 3 ] && cmp -s r1 r2 || die "ppo $key with a reward model: 2 ranks vs 1 differ: $(paste r1 r2)"
done
ok "ppo with a reward model (+ monitor, anchor): each rank scores its own rollouts; rewards equal 1 rank's bit for bit"
JL_DIST_FAIL=1:0 $MPI "$JL" $G --batch-size 1 --out gf >"$W/log" 2>&1
rc=$?
[ $rc = 2 ] && [ "$(grep -c '^jielong' "$W/log")" = 1 ] && grep -q "^jielong grpo: rank 1 of 2: bad batch" "$W/log" ||
  die "a failing rollout on rank 1: exit $rc, not one message naming it"
[ -f gf/checkpoint.safetensors ] && die "a failed first step wrote a checkpoint"
ok "grpo: a rank whose rollout fails stops the job: exit 2, one message naming rank 1"

# ---- resume after a rank is killed: the resumed steps are the uninterrupted run's ----
K="pretrain --data corpus.txt --depth 1 --context 32 --batch-size 4 --steps 20000 --save-every 4 --eval-every 0
   --lr 3e-3 --threads 1 --precision fp32"
run "reference run" $MPI "$JL" $K --stop-after 160 --out ref
$MPI "$JL" $K --out k >"$W/log" 2>&1 &
mp=$!
for _ in $(seq 300); do [ -f k/checkpoint.safetensors ] && break; sleep 0.1; done
[ -f k/checkpoint.safetensors ] || die "no checkpoint to kill after"
launcher=$(pgrep -P $mp mpirun || echo $mp) # `timeout` runs mpirun as its child
victim=$(pgrep -P "$launcher" | tail -1)
[ -n "$victim" ] && kill -9 "$victim"
wait $mp && die "the job went on after a rank was killed"
cp k/checkpoint.safetensors killed.ckpt
run "resume after the kill" $MPI "$JL" $K --resume --stop-after 8 --out k
field k/metrics.jsonl loss | sort -n > lk; field ref/metrics.jsonl loss | sort -n > lr
last=$(tail -1 lk | cut -d' ' -f1)
[ "$last" -le 160 ] || die "killed too late (step $last) to compare"
head -n "$last" lr | cmp -s - lk || die "resumed losses differ from the uninterrupted run's: $(diff <(head -n "$last" lr) lk | head -4)"
ok "resume after kill -9 of a rank: steps 1..$last equal the uninterrupted run's bit for bit"

# Waits until the run resumed in k has logged 3 steps past its checkpoint's ($from); $launcher: the mpirun process
# of the background job $mp (`timeout` runs mpirun as its child).
after_3_steps() {
  for _ in $(seq 300); do
    [ "$(tail -1 k/metrics.jsonl | sed -n 's/.*"step":\([0-9]*\).*/\1/p')" -ge $((from + 3)) ] 2>/dev/null && break
    sleep 0.1
  done
  launcher=$(pgrep -P $mp mpirun || echo $mp)
}

# ---- Ctrl-C: mpirun gets the SIGINT (the ranks have process groups of their own) and sends the ranks SIGTERM; they
# agree to stop after the step, rank 0 writes a whole checkpoint, every rank exits; --resume continues from it
$MPI "$JL" $K --resume --out k >"$W/log" 2>&1 &
mp=$!
from=$(state_num step k/checkpoint.safetensors)
after_3_steps
ranks=$(pgrep -P "$launcher" | tr '\n' ' ')
kill -INT "$launcher"
wait $mp
rc=$?
alive() { for p in $ranks; do ps -o stat= -p "$p" 2>/dev/null | grep -qv Z && return 0; done; return 1; }
for _ in $(seq 50); do alive || break; sleep 0.1; done
alive && die "a rank process outlived Ctrl-C by 5 s: $(ps -o pid,stat,comm -p ${ranks// /,})"
[ $rc != 0 ] || die "Ctrl-C: exit 0"
[ "$(grep -c '^jielong pretrain: interrupted by signal' "$W/log")" = 1 ] || die "Ctrl-C: not one message: $(grep '^jielong' "$W/log")"
at=$(state_num step k/checkpoint.safetensors)
[ "$at" = "$(tail -1 k/metrics.jsonl | sed -n 's/.*"step":\([0-9]*\).*/\1/p')" ] && [ "$at" -gt "$from" ] ||
  die "Ctrl-C: the checkpoint (step $at) is not the last step logged"
run "resume after Ctrl-C" $MPI "$JL" $K --resume --stop-after 1 --out k
ok "Ctrl-C under mpirun: every rank stops (exit $rc), one message, a whole checkpoint of step $at that resumes"

# ---- a failing rank: one message naming it, exit 2, the checkpoint untouched ----
sum=$(md5sum < k/checkpoint.safetensors)
updates=$(state_num updates k/checkpoint.safetensors)
[ -n "$updates" ] || die "no update count in the checkpoint"
JL_DIST_FAIL=1:$((updates + 1)) $MPI "$JL" $K --resume --save-every 1 --out k >"$W/log" 2>&1
rc=$?
[ $rc = 2 ] || die "a bad batch on rank 1: exit $rc, not 2"
[ "$(grep -c '^jielong' "$W/log")" = 1 ] || die "not one message: $(grep '^jielong' "$W/log")"
grep -q "^jielong pretrain: rank 1 of 2: bad batch at update" "$W/log" || die "message does not name rank 1"
grep -q "saved k/checkpoint" "$W/log" || die "the step before the bad batch was not checkpointed"
[ "$(md5sum < k/checkpoint.safetensors)" != "$sum" ] || die "expected the checkpoint of the step before the bad batch"
sum=$(md5sum < k/checkpoint.safetensors)
JL_DIST_FAIL=1:$((updates + 2)) $MPI "$JL" $K --resume --save-every 0 --out k >"$W/log" 2>&1
[ "$(md5sum < k/checkpoint.safetensors)" = "$sum" ] || die "a failing rank changed the checkpoint"
ok "a bad batch on rank 1: exit 2, one message naming rank 1, the last checkpoint untouched"

# ---- a hung rank: the others give up after JL_DIST_TIMEOUT with a message naming it ----
JL_DIST_TIMEOUT=2 $MPI "$JL" $K --resume --save-every 0 --out k >"$W/log" 2>&1 &
mp=$!
from=$(state_num step k/checkpoint.safetensors)
after_3_steps
victim=$(pgrep -P "$launcher" | tail -1)
t0=$(date +%s)
[ -n "$victim" ] && kill -STOP "$victim"
wait $mp
rc=$?
secs=$(( $(date +%s) - t0 ))
[ -n "$victim" ] && kill -CONT "$victim" 2>/dev/null
[ $rc != 0 ] && [ $secs -le 30 ] || die "a stopped rank: exit $rc after $secs s"
grep -q "rank 0 of 2: no message from rank 1 within 2 s" "$W/log" || die "no timeout message naming rank 1"
[ "$(md5sum < k/checkpoint.safetensors)" = "$sum" ] || die "a hung rank changed the checkpoint"
ok "a stopped rank: the job ends after the 2 s timeout ($secs s) naming rank 1, the checkpoint untouched"

# ---- the sanitizer build under mpirun (JL_ASAN_BIN: another binary; default build/asan/jielong when built) ----
# the overlapped all-reduce (pretrain; ppo: the RL stages' jl_trainer_sum_begin/end with the value head) and the
# split reward-model scoring and ZeRO-1, under AddressSanitizer + UBSan on both ranks
A=${JL_ASAN_BIN:-$ROOT/build/asan/jielong}
if [ -x "$A" ]; then
  ASAN_OPTIONS=detect_leaks=0 run "sanitizer binary, 2 ranks" $MPI "$A" $P --steps 4 --out pa
  grep -q '"allreduce_overlapped":' pa/metrics.jsonl || die "sanitizer pretrain: the all-reduce did not overlap"
  ASAN_OPTIONS=detect_leaks=0 run "sanitizer binary, ppo, 2 ranks" $MPI "$A" $M --steps 2 --batch-size 2 --zero 1 --out rma
  grep -q '"allreduce_overlapped":' rma/metrics.jsonl || die "sanitizer ppo: the all-reduce did not overlap"
  ok "the sanitizer binary trains on 2 ranks, all-reduce overlapped: pretrain, ppo with a reward model and --zero 1 (detect_leaks=0: OpenMPI's own allocations)"
fi
