# Two commands do all the set-up on a fresh machine:
#   make demo   builds the environment if needed, then runs the demo
#   make test   builds the environment if needed, then runs the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test env system-deps teacher model bench bench-teacher bluez-test clean

env: $(STAMP)

# torch first, pinned: 2.13.0 is the CPU build; any other version pulls CUDA packages.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Debian packages the tests use (the MQTT broker); installed only when missing.
system-deps:
	@command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || \
	  { [ "$$(id -u)" = 0 ] && (apt-get update -qq && apt-get install -y -qq mosquitto >/dev/null) || \
	    echo "note: mosquitto not installed; MQTT broker tests will be skipped"; }

demo: $(STAMP)
	$(BIN)/anyecg-edge demo

test: $(STAMP) system-deps
	$(BIN)/python -m pytest -q

# The demo teacher (synthetic electrolyte cohort -> Net1D), into artifacts/teacher; see docs/demo-model.md.
teacher: $(STAMP)
	$(BIN)/anyecg-edge teacher

# The demo model the runtime ships with, rebuilt from the seed: synthetic cohort and demo teacher
# (anyecg-edge teacher), a second synthetic cohort of unseen subjects for distillation,
# distillation under torchrun (DISTILL_PROCS processes), full-integer int8 export calibrated on
# real ECG, and the fidelity report (docs/demo-model-fidelity.md). DATA is the real-ECG folder.
# Real recordings held out of distillation and calibration, so that fidelity on real ECG is
# measured on unseen data: PTB, and the CinC 2017 and CinC 2021 records whose names end in 0, 1
# or 2. CinC 2021's E07510 is a byte-for-byte copy of E07509, a training record, so it counts as
# neither. Sources written PATH*N are drawn N times (other segments, other augmentations).
DATA          ?= ../shared/data
DISTILL_PROCS ?= 2
MODEL_RECIPE  := quantize/recipes/demo_model.json
DEMO_MODEL    := anyecg_edge/data/models/demo-electrolytes-int8.tflite
CINC          := $(basename $(wildcard $(DATA)/cinc2017/*.hea) $(wildcard $(DATA)/cinc2021/*.hea))
UNSEEN        := $(filter-out %/E07510,$(filter %0 %1 %2,$(CINC))) $(DATA)/ptbdb
SEEN          := $(filter-out %0 %1 %2,$(CINC))
comma         := ,
empty         :=
space         := $(empty) $(empty)

model: $(STAMP)
	$(BIN)/anyecg-edge teacher --out artifacts/teacher
	$(BIN)/anyecg-edge cohort --out artifacts/distill-cohort --subjects 4000 --seed 20240604 \
	  --records-per-subject 1 --duration 17 20 --overwrite --quiet
	OMP_NUM_THREADS=1 $(BIN)/torchrun --standalone --nproc-per-node $(DISTILL_PROCS) -m anyecg_edge.cli distill \
	  --teacher artifacts/teacher/teacher.pth --recipe $(MODEL_RECIPE) --out artifacts/student \
	  --data artifacts/teacher/cohort --data artifacts/distill-cohort \
	  $(foreach r,$(SEEN),--data '$(r)*8') --data '$(DATA)/cpsc2021*2' --data '$(DATA)/mitdb*20'
	$(BIN)/anyecg-edge export --student artifacts/student/student.pt --recipe $(MODEL_RECIPE) --out artifacts/model \
	  $(foreach r,$(SEEN),--calibration $(r)) --calibration $(DATA)/cpsc2021 --calibration $(DATA)/mitdb
	$(BIN)/anyecg-edge verify --model artifacts/model/demo-electrolytes-int8.tflite \
	  --teacher artifacts/teacher/teacher.pth --out artifacts/model/fidelity \
	  --data held-out-synthetic=artifacts/teacher/cohort@test \
	  --data real-unseen=$(subst $(space),$(comma),$(strip $(UNSEEN))) \
	  --data real-distilled=$(subst $(space),$(comma),$(strip $(SEEN))),$(DATA)/cpsc2021,$(DATA)/mitdb \
	  --markdown docs/demo-model-fidelity.md --images docs/img/demo-model
	mkdir -p $(dir $(DEMO_MODEL))
	cp artifacts/model/demo-electrolytes-int8.tflite $(DEMO_MODEL)

# The full-size ECGFounder teacher as ONNX fp32 and int8 TFLite through the export stages
# (several minutes, once); cached in artifacts/bench/ and reused by `make bench`.
bench-teacher: $(STAMP)
	$(BIN)/python benchmarks/bench_artifacts.py teacher

# The benchmark suite (benchmarks/README.md), 5-10 minutes: every runtime side by side, stream
# latency, gateway scaling, size and memory, fidelity, distillation, the Raspberry Pi check.
# Writes benchmarks/results/latest.json, latest.md and plots. Run `make bench-teacher` once before.
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# bleak's real BlueZ backend against the virtual wearable, inside a virtme-ng QEMU guest under TCG
# (installs qemu-system-x86, linux-image-amd64, bluez, dbus, kmod, busybox-static and virtme-ng
# when missing; needs root; 3-10 min depending on host load). -s shows the guest's progress.
bluez-test: $(STAMP)
	ANYECG_BLUEZ_VM=1 $(BIN)/python -m pytest -q -s tests/bluez

clean:
	rm -rf $(VENV) build *.egg-info
