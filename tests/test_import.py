import subprocess
import sys


def test_import_is_light_and_leaves_tensorflow_out():
    code = (
        "import sys, time; t = time.perf_counter(); import automl; "
        "print(time.perf_counter() - t); "
        "print('tensorflow' in sys.modules, 'keras' in sys.modules, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    assert out[1] == "False False False", "import automl must not import TensorFlow, Keras or scikit-learn"


def test_listing_models_does_not_import_tensorflow():
    code = "import sys, automl; automl.list_models(); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_public_surface():
    import automl

    for name in automl.__all__:
        assert getattr(automl, name) is not None
    assert set(automl.__all__) <= set(dir(automl))
