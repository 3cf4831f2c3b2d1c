"""Packaging for sklearn_epi."""

from pathlib import Path

from setuptools import find_packages, setup

setup(
    name="sklearn_epi",
    version="0.2.0",
    description="Emergent property inference (EPI) as a scikit-learn estimator",
    long_description=Path(__file__).with_name("README.rst").read_text(encoding="utf-8"),
    long_description_content_type="text/x-rst",
    license="MIT",
    packages=find_packages(include=["sklearn_epi", "sklearn_epi.*"]),
    # The console script's entry, outside the package: it handles SIGTERM
    # before importing the package (and TensorFlow).
    py_modules=["sklearn_epi_cli"],
    python_requires=">=3.10",
    install_requires=[
        # TFP 0.25 (the newest release) imports Keras 2 through tf-keras,
        # whose releases follow TensorFlow's minor versions. The window is
        # what was run, each with TFP 0.25.0 and the matching tf-keras: the
        # whole test suite on TF 2.18 (Python 3.11), 2.21 (Python 3.12, with
        # the docs build) and 2.22 (2.22.0rc0 on Python 3.14.10, with the
        # docs build and tf-keras-nightly 2.22.0.dev2026101709, since no
        # tf-keras 2.22 is released yet: 416 passed, the one failure, two
        # lines of TF 2.22's new cuInit trace on stderr, fixed in _quiet.py);
        # the suite without its slow fits on 2.19 (Python 3.10) and 2.20
        # (Python 3.13). TF 2.18 and 2.19 publish no wheels for Python 3.13,
        # and only 2.22 has wheels for 3.14. Until tf-keras 2.22.0 is out,
        # pip settles on TF 2.21 (tf-keras 2.21 caps TF below 2.22).
        "tensorflow>=2.18,<2.23",
        "tf-keras>=2.18,<2.23",
        "tensorflow-probability>=0.25,<0.26",
        # TFP 0.25 imports distutils, which Python 3.12 and later have only
        # through setuptools (the test extra brought it in by tensorboard).
        "setuptools; python_version >= '3.12'",
        "scikit-learn>=1.6",
        "numpy>=1.26",
        "scipy>=1.11",
        "pandas>=2.0",
        "matplotlib>=3.7",
        "joblib>=1.4",
        "cloudpickle>=2.2",  # saved fits keep statistics defined in scripts and notebooks
        "tqdm>=4.60",
        "tomli>=2; python_version < '3.11'",  # the command line's TOML configurations
        "pyyaml>=6",  # ... and YAML ones (NeuroCAAS's job manager reads YAML or JSON)
    ],
    extras_require={
        "test": [
            "pytest>=7",
            "pytest-xdist>=3.5",
            "hypothesis>=6",
            "dask[distributed]>=2024.1",
            "sphinx>=7",
            "sphinx-gallery>=0.15",
            "numpydoc>=1.6",
            "pydata-sphinx-theme>=0.15",
            "sphinx-mathjax-offline>=0.0.2",
            "tensorboard>=2.18",
            # the web interface and its browser tests (Chromium from tests/install_browser.sh)
            "dash>=4.4,<5",
            "plotly>=5",
            "selenium>=4.20",
            # the NeuroCAAS analysis against a local S3 (moto's server mode)
            "moto[server]>=5.0",
            "boto3>=1.28",
        ],
        # sklearn-epi ui: a local web interface over a directory of runs. Checked
        # with dash 4.4.1 and plotly 7.1.0; Dash 5 may drop dash_table.DataTable.
        "ui": ["dash>=4.4,<5", "plotly>=5"],
        "monitoring": ["tensorboard>=2.18"],
        # benchmarks/peers.py only (never imported by the package); checked with
        # sbi 0.27.0, PyTorch 2.13 (CPU build) and pyABC 0.13.0 (SQLAlchemy 2.1).
        "peers": ["sbi>=0.27", "pyabc>=0.13"],
        "doc": [
            "sphinx>=7",
            "sphinx-gallery>=0.15",
            "numpydoc>=1.6",
            "pydata-sphinx-theme>=0.15",
            "sphinx-mathjax-offline>=0.0.2",
        ],
    },
    entry_points={
        "console_scripts": [
            "sklearn-epi-demo=sklearn_epi.__main__:main",
            "sklearn-epi=sklearn_epi_cli:main",
        ]
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "Programming Language :: Python :: 3.14",
        "Intended Audience :: Science/Research",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
