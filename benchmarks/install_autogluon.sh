#!/bin/sh
# Installs AutoGluon 1.6.3 (tabular, with LightGBM, CatBoost, XGBoost and its neural networks) into
# a virtualenv of its own: it pins an older pandas than automl's. PyTorch is installed first as the
# CPU build (2.13.0), so that AutoGluon's neural networks are among its models and pip does not
# fetch a CUDA build of several GB. Then run the harness with
#     python -m benchmarks.run --frameworks autogluon --python autogluon=VENV/bin/python ...
#
#     sh benchmarks/install_autogluon.sh [VENV]        (default: .venv-autogluon)
set -eu
VENV=${1:-.venv-autogluon}
python3.11 -m venv "$VENV" 2>/dev/null || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q "torch==2.13.0"
"$VENV/bin/pip" install -q "autogluon.tabular[all]==1.6.3" "torch==2.13.0"
"$VENV/bin/python" -c "import autogluon.tabular, torch, pandas; print('autogluon', autogluon.tabular.__version__, 'torch', torch.__version__, 'pandas', pandas.__version__)"
