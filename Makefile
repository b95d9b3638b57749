# neumat — the README's commands live here.
#   make setup   .venv with neumat (+ native extension), test extras, torch (CPU pin), lavapipe,
#                Xvfb, libLLVM 19 (Mitsuba llvm_ad_rgb)
#   make test    setup + full pytest suite (GPU tests skip with a reason on CPU machines)
#   make demo    setup + render the shipped default material to out/demo.png with its frame time
#   make pictures  re-render the README's pictures (assets/*.png) from the shipped bundles
#   make assets  re-train the shipped materials in assets/materials and the NeuMIP decoders in
#                assets/neumip (CPU, deterministic)
#   make bench   setup + INT8 MLP throughput and frame-time benchmarks (JSON, markdown, PNG in out/)
#   make fidelity  setup + train the fidelity suite's materials and compare their renders with
#                Mitsuba 3 at held-out light/view pairs (out/fidelity/; FIDELITY_ARGS=--quick etc.)
#   make fuzz    setup + every fuzz target (bundle loader, INM importer, mesh loader, training
#                config, CLI option parsers) with FUZZ_EXAMPLES (default 100000) examples per target
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# CPU set-ups pin torch: an unpinned torch pulls a multi-GB CUDA build (see ENVIRONMENT.md).
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
NATIVE_SOURCES := $(wildcard cpp/*.cpp cpp/*.h cpp/*.in cuda/*.cu cuda/*.cuh cuda/*.h cuda/*.cpp) CMakeLists.txt pyproject.toml

.PHONY: setup vulkan display llvm test demo pictures bench fidelity fuzz assets gpu-check gpu-check-quick gpu-check-falcor gpu-pack clean

setup: $(VENV)/.neumat-installed vulkan display llvm

vulkan:
	@bash scripts/ensure_vulkan.sh

# libLLVM >= 16: Mitsuba's llvm_ad_rgb variant (the fidelity suite's same-ray ground truth).
llvm:
	@bash scripts/ensure_llvm.sh

# Xvfb + Mesa GL: headless `neumat view` and the viewer tests.
display:
	@bash scripts/ensure_display.sh

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.deps-installed: $(VENV)/bin/python
	$(BIN)/pip install -q "$(TORCH_SPEC)" "scikit-build-core>=0.10" "pybind11>=2.12" ninja
	@touch $@

$(VENV)/.neumat-installed: $(VENV)/.deps-installed $(NATIVE_SOURCES)
	$(BIN)/pip install -q --no-build-isolation -e ".[test,train,data,view,video,inverse]"
	$(BIN)/pip install -q --no-deps "timm>=1.0,<2"  # inverse extra: timm without torchvision (pyproject.toml)
	@touch $@

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

DEMO_MATERIAL ?= assets/materials/leather.nmat
demo: setup
	@mkdir -p out
	$(BIN)/neumat render $(DEMO_MATERIAL) --mesh assets/meshes/draped_cloth.obj --size 512x512 \
		--camera $(DEMO_CAMERA) --light $(DEMO_LIGHT) --out out/demo.png
	@echo "demo image: out/demo.png"

DEMO_CAMERA ?= -60,30,3.0
DEMO_LIGHT ?= 30,50,3

SHIPPED_MATERIALS := leather gravel
# One OpenMP thread: the bundles then do not depend on the machine's core count, and a second
# job on the same cores does not stall the run (two 2-thread torch runs on 2 cores: ~10x slower).
assets: setup
	for m in $(SHIPPED_MATERIALS); do \
		rm -rf out/runs/$$m && \
		OMP_NUM_THREADS=1 $(BIN)/neumat train --config assets/materials/$$m.json --out out/runs/$$m \
			--export assets/materials/$$m.nmat || exit 1; \
	done
	$(BIN)/neumat neumip pretrain --out assets/neumip/universal_mlps.safetensors --no-progress
	$(BIN)/neumat neumip fit stone_tiles --decoders assets/neumip/universal_mlps.safetensors \
		--steps 1000 --batch-size 2048 --out assets/materials/stone_tiles_neumip.nmat --no-progress

# The README's pictures, from the shipped bundles (re-run after `make assets` or a renderer change).
pictures: setup
	$(BIN)/neumat render assets/materials/leather.nmat --mesh assets/meshes/draped_cloth.obj --size 512x512 \
		--camera $(DEMO_CAMERA) --light $(DEMO_LIGHT) --out assets/demo.png
	$(BIN)/neumat render assets/materials/gravel.nmat --mesh assets/meshes/draped_cloth.obj --size 512x512 \
		--camera $(DEMO_CAMERA) --light $(DEMO_LIGHT) --out assets/demo_gravel.png
	$(BIN)/python scripts/feature_lod_picture.py assets/materials/gravel.nmat assets/feature_lod.png
	$(BIN)/neumat render assets/materials/leather.nmat assets/materials/stone_tiles_neumip.nmat --side-by-side \
		--shape cube --size 640x320 --light -40,45,3 --out assets/side_by_side.png
	$(BIN)/neumat view assets/materials/leather.nmat assets/materials/gravel.nmat \
		--mesh assets/meshes/draped_cloth.obj --headless --frames 6 --size 1000x720 --screenshot assets/viewer.png \
		--script '[{"frame": 0, "action": "set", "continuous": true}]'

bench: setup
	@mkdir -p out
	$(BIN)/neumat bench mlp --json out/bench_mlp.json
	$(BIN)/neumat bench frames --out out/bench_frames

FIDELITY_ARGS ?=
FUZZ_EXAMPLES ?= 100000
fuzz: setup
	NEUMAT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/python -m pytest -m fuzz -p no:xdist -q $(PYTEST_ARGS)

# make gpu-check: the one-command GPU check (scripts/gpu_check.sh; OUT=DIR, QUICK=1 or
# gpu-check-quick for --quick). On a bare GPU machine it needs no set-up of ours (it unpacks the
# .gpu/ folder of make gpu-pack); here it uses the .venv of make setup and skips the GPU parts.
gpu-check:
	bash scripts/gpu_check.sh $(if $(QUICK),--quick)

gpu-check-quick:
	bash scripts/gpu_check.sh --quick

# The Falcor half, a second device call carrying .gpu-falcor (FALCOR=1 make gpu-pack).
gpu-check-falcor:
	bash scripts/gpu_check.sh --falcor

gpu-pack:
	bash scripts/gpu_pack.sh

fidelity: setup
	$(BIN)/neumat fidelity --out out/fidelity $(FIDELITY_ARGS)

clean:
	rm -rf build out .pytest_cache
