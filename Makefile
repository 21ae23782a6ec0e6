# Two commands for users: `make demo` and `make test`. Both create .venv if missing and install
# the project into it (torch first: `torch==2.13.0` is a CPU build; a bare `torch` pulls CUDA).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format install clean bundles sweeps osi epopt online

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/s2r demo --out demo_out

test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) demo_out

# The example policy bundles shipped in policies/bundles/ (3-4 hours on 2 cores): state teachers trained with
# PPO under the default randomization, then their camera students distilled with DAgger under stale camera frames
# (sim/randomization/variants/stale_frames.yaml; the grasp student's grasp_student.yaml adds heavier depth noise).
# The grasp student was made in four runs: the first two (from scratch, then two more DAgger iterations with --init)
# under the randomization of the time (colors drawn in RGB, fresh frames), the last two continuing it with new scenes
# and one DAgger iteration each under today's (colors drawn in HSV, frames 30-180 ms old); those were stopped after
# their first iteration for time, which --steps 5000 --iterations 1 reproduces. Run today, the first two already
# train under today's domain. Two more runs continue it with scenes carrying table masks and tables repainted at
# fit time (--surface-overlay); the first ran without the earlier runs' DAgger samples (their files were gone),
# which a run of this target aggregates. The navigate student was stopped during its fifth DAgger iteration; the run's best of
# the first four (iteration 2) is the shipped one.
# The SO-101's state policy (so101_grasp_state): its run was stopped after its 50,000-step evaluation, whose bundle
# is the shipped one (--steps 50000 reproduces it). Its camera student (so101_grasp_rgbd) is the grasp student's
# recipe on the SO-101's camera crop with 40,000 scenes (distilled before DAgger episodes were collected with their
# own random draws: the same recipe run today collects other DAgger samples), then two continuations with table
# masks and repainted tables (--surface-overlay), new scenes and DAgger iterations; the second run's held-out
# episodes chose its first iteration (iteration 2 of the chain), the shipped one.
bundles: $(STAMP)
	$(BIN)/s2r train --task grasp --algo ppo --steps 300000 --seed 0 --out runs/grasp_ppo --eval-every 50000 --eval-episodes 100
	$(BIN)/s2r train --task navigate --algo ppo --steps 150000 --seed 0 --out runs/navigate_ppo --eval-every 25000 --eval-episodes 100
	$(BIN)/s2r distill --teacher runs/grasp_ppo --coordinates --channels 32,64,64 --pretrain-scenes 60000 --pretrain-epochs 16 --pretrain-steps 14 --scene-cache runs/scene_cache --steps 10000 --iterations 2 --keep-every 5 --epochs 3 --lr 1e-3 --supersample 4 --crop 96,96,448,336 --eval-episodes 100 --randomization $(GRASP_STUDENT) --seed 0 --out runs/grasp_student
	$(BIN)/s2r distill --teacher runs/grasp_ppo --init runs/grasp_student/bundle --pretrain-scenes 60000 --pretrain-steps 14 --scene-cache runs/scene_cache --steps 10000 --iterations 2 --keep-every 5 --epochs 3 --lr 1e-3 --supersample 4 --crop 96,96,448,336 --eval-episodes 100 --randomization $(GRASP_STUDENT) --seed 0 --out runs/grasp_student_more
	$(BIN)/s2r distill --teacher runs/grasp_ppo --init runs/grasp_student_more/bundle --pretrain-scenes 15000 --pretrain-steps 14 --scene-cache runs/scene_cache --steps 5000 --iterations 1 --keep-every 5 --epochs 3 --lr 1e-3 --supersample 4 --crop 96,96,448,336 --eval-episodes 60 --randomization $(GRASP_STUDENT) --seed 0 --out runs/grasp_student_hsv
	$(BIN)/s2r distill --teacher runs/grasp_ppo --init runs/grasp_student_hsv/bundle --pretrain-scenes 30000 --pretrain-steps 14 --scene-cache runs/scene_cache --steps 5000 --iterations 1 --keep-every 5 --epochs 6 --lr 1e-3 --supersample 4 --crop 96,96,448,336 --eval-episodes 60 --randomization $(GRASP_STUDENT) --seed 0 --out runs/grasp_student_hsv_more
	$(BIN)/s2r distill --teacher runs/grasp_ppo --init runs/grasp_student_hsv_more/bundle --pretrain-scenes 60000 --pretrain-steps 14 --scene-cache runs/scene_cache --steps 5000 --iterations 1 --keep-every 5 --epochs 6 --lr 1e-3 --supersample 4 --crop 96,96,448,336 --eval-episodes 60 --randomization $(GRASP_STUDENT) --seed 2 --surface-overlay 0.6 --out runs/grasp_student_surface
	$(BIN)/s2r distill --teacher runs/grasp_ppo --init runs/grasp_student_surface/bundle --pretrain-scenes 30000 --pretrain-steps 14 --scene-cache runs/scene_cache --steps 5000 --iterations 1 --keep-every 5 --epochs 4 --lr 1e-3 --supersample 4 --crop 96,96,448,336 --eval-episodes 60 --randomization $(GRASP_STUDENT) --seed 3 --surface-overlay 0.7 --out runs/grasp_student_surface_more
	$(BIN)/s2r distill --teacher runs/navigate_ppo --steps 30000 --epochs 6 --seed 0 --randomization sim/randomization/variants/stale_frames.yaml --out runs/navigate_student
	$(BIN)/s2r train --task grasp --robot so101 --algo ppo --steps 50000 --seed 0 --out runs/so101_grasp_ppo --eval-every 50000 --eval-episodes 50
	$(BIN)/s2r distill --teacher runs/so101_grasp_ppo --coordinates --channels 32,64,64 --pretrain-scenes 40000 --pretrain-epochs 16 --pretrain-steps 14 --scene-cache runs/scene_cache --steps 10000 --iterations 2 --keep-every 5 --epochs 3 --lr 1e-3 --supersample 4 --crop 136,92,368,336 --eval-episodes 60 --randomization $(GRASP_STUDENT) --seed 0 --out runs/so101_student
	$(BIN)/s2r distill --teacher runs/so101_grasp_ppo --init runs/so101_student/bundle --pretrain-scenes 60000 --pretrain-steps 14 --scene-cache runs/scene_cache --steps 5000 --iterations 1 --keep-every 5 --epochs 6 --lr 1e-3 --supersample 4 --crop 136,92,368,336 --eval-episodes 60 --randomization $(GRASP_STUDENT) --seed 1 --surface-overlay 0.6 --out runs/so101_overlay_60k
	$(BIN)/s2r distill --teacher runs/so101_grasp_ppo --init runs/so101_overlay_60k/bundle --pretrain-scenes 30000 --pretrain-steps 14 --scene-cache runs/scene_cache --steps 10000 --iterations 2 --keep-every 5 --epochs 4 --lr 1e-3 --supersample 4 --crop 136,92,368,336 --eval-episodes 60 --randomization $(GRASP_STUDENT) --seed 2 --surface-overlay 0.7 --out runs/so101_overlay_more
	for name in grasp_ppo:grasp_state navigate_ppo:navigate_state grasp_student_surface_more:grasp_rgbd navigate_student:navigate_rgbd so101_grasp_ppo:so101_grasp_state so101_overlay_more:so101_grasp_rgbd; do \
		rm -rf policies/bundles/$${name#*:} && mkdir -p policies/bundles && cp -r runs/$${name%:*}/bundle policies/bundles/$${name#*:}; \
	done
GRASP_STUDENT = sim/randomization/variants/grasp_student.yaml

# Robustness curves in docs/robustness/: the randomized policies against ones trained without randomization
# (runs/grasp_nodr, runs/navigate_nodr: `s2r train ... --randomization none --steps 50000`), on randomized
# held-out domains with one parameter swept beyond the training range.
SWEEP = $(BIN)/s2r eval --seed 1000000 --randomization default
sweeps: $(STAMP)
	mkdir -p docs/robustness
	$(SWEEP) --task grasp --policy runs/grasp_ppo runs/grasp_nodr --episodes 50 --sweep object_mass=0.01:0.6:6 --plot docs/robustness/grasp_object_mass.png --json docs/robustness/grasp_object_mass.json
	$(SWEEP) --task grasp --policy runs/grasp_ppo runs/grasp_nodr --episodes 50 --sweep object_friction=0.2:1.25:6 --plot docs/robustness/grasp_object_friction.png --json docs/robustness/grasp_object_friction.json
	$(SWEEP) --task grasp --policy runs/grasp_ppo runs/grasp_nodr --episodes 50 --sweep latency_s=0:0.12:5 --plot docs/robustness/grasp_latency.png --json docs/robustness/grasp_latency.json
	$(SWEEP) --task navigate --policy runs/navigate_ppo runs/navigate_nodr --episodes 30 --sweep wheel_radius_scale=0.8:1.2:5 --plot docs/robustness/navigate_wheel_radius.png --json docs/robustness/navigate_wheel_radius.json
	$(SWEEP) --task navigate --policy runs/navigate_ppo runs/navigate_nodr --episodes 30 --sweep latency_s=0:0.15:5 --plot docs/robustness/navigate_latency.png --json docs/robustness/navigate_latency.json

# Online system identification (docs/osi/README.md): universal policies and their estimators for both tasks (about an hour
# on 2 cores), then the four-way comparison on held-out domains inside the training ranges and on the domains in
# docs/osi/*.yaml outside them: no randomization, randomized zero-shot, universal policy + estimator, oracle.
# Needs runs/grasp_ppo, runs/navigate_ppo (make bundles) and runs/grasp_nodr, runs/navigate_nodr (see sweeps).
OSI_EVAL = $(BIN)/s2r eval --seed 3000000 --randomization default --adapt --oracle
osi: $(STAMP)
	$(BIN)/s2r train --task grasp --universal --steps 300000 --seed 0 --out runs/grasp_up --eval-every 50000
	$(BIN)/s2r train --task navigate --universal --steps 300000 --seed 0 --out runs/navigate_up --eval-every 50000
	$(BIN)/s2r train-osi --policy runs/grasp_up --history 16 --out runs/grasp_up_osi
	$(BIN)/s2r train-osi --policy runs/navigate_up --history 16 --steps 20000 --epochs 15 --out runs/navigate_up_osi
	mkdir -p runs/osi
	for task in grasp navigate; do \
		$(OSI_EVAL) --task $$task --episodes 200 --policy runs/$${task}_nodr runs/$${task}_ppo runs/$${task}_up_osi \
			--json runs/osi/$${task}_in_range.json; \
		for domain in docs/osi/$${task}_*.yaml; do \
			$(OSI_EVAL) --task $$task --episodes 100 --domain $$domain \
				--policy runs/$${task}_nodr runs/$${task}_ppo runs/$${task}_up_osi --json runs/osi/$$(basename $${domain%.yaml}).json; \
		done; \
		$(BIN)/s2r eval --task $$task --seed 3000000 --episodes 4 --policy runs/$${task}_up_osi --adapt \
			--plot docs/osi/$${task}_estimates.png; \
	done

# EPOpt measured (docs/robustness/epopt.md): the bundles' state-policy recipe with EPOpt's worst-20 % filter and
# without, two training seeds each, then every policy swept beyond its training ranges (about 2 hours on 2 cores).
epopt: $(STAMP)
	$(BIN)/python benchmarks/epopt.py --task grasp --out docs/robustness/epopt_grasp.json --plot docs/robustness/epopt_grasp.png
	$(BIN)/python benchmarks/epopt.py --task navigate --out docs/robustness/epopt_navigate.json --plot docs/robustness/epopt_navigate.png

# Online adaptation compared (docs/osi/README.md, docs/osi/navigate_online.md): a policy with memory (16 steps), the
# universal policy with estimators reading proprioception and also the joint efforts, against the randomized policy
# (the one `make epopt` trains without EPOpt, runs/epopt/navigate_e1_s0) and the oracle, in simulation and through
# the mock base on the MuJoCo reality; then each dynamics term's trace in the arm's readings.
online: $(STAMP)
	$(BIN)/s2r train --task navigate --history 16 --steps 150000 --seed 0 --out runs/navigate_memory --eval-every 25000 --eval-episodes 100
	$(BIN)/s2r train --task navigate --universal --steps 150000 --seed 0 --out runs/navigate_up --eval-every 25000 --eval-episodes 100
	$(BIN)/s2r train-osi --policy runs/navigate_up --history 16 --steps 20000 --epochs 15 --out runs/navigate_up_osi
	$(BIN)/s2r train-osi --policy runs/navigate_up --history 16 --steps 20000 --epochs 15 --effort --out runs/navigate_up_osi_effort
	$(BIN)/python benchmarks/online_adaptation.py --task navigate --zero-shot runs/epopt/navigate_e1_s0 \
		--up-osi runs/navigate_up_osi --up-osi-effort runs/navigate_up_osi_effort --memory runs/navigate_memory \
		--mock-episodes 30 --mock-domains nominal small_wheels \
		--out docs/osi/navigate_online.json --markdown docs/osi/navigate_online.md
	$(BIN)/python benchmarks/observability.py --task grasp --episodes 32 --out docs/osi/observability_grasp.json
