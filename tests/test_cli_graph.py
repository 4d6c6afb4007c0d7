"""The command line on a graph network: layers by name, and demo's clear refusal."""

from __future__ import annotations

import re

import numpy as np
import pytest

import minideconv as md
from minideconv import cli, nn


@pytest.fixture(scope="module")
def graph_file(tmp_path_factory):
    """The shipped network as a Graph with torch-like names, plus a residual sum at the
    end (relu(pool) + relu(pool) read twice: a join, so it is no chain)."""
    net = md.data.load_model()
    names = [f"features.{i}" for i in range(8)]
    nodes = [(name, layer, (names[i - 1] if i else "input",))
             for i, (name, layer) in enumerate(zip(names, net.layers[:8]))]
    nodes.append(("add", nn.Add(), ("features.7", "features.6")))
    path = tmp_path_factory.mktemp("graph") / "graph.npz"
    nn.Graph(nodes, input_shape=net.input_shape).save(path)
    return path


def test_project_takes_a_layer_name(graph_file, tmp_path, capsys):
    out = tmp_path / "p.png"
    code = cli.main(["project", "--model", str(graph_file), "--image", "test:3",
                     "--layer", "features.5", "--channel", "4", "--out", str(out)])
    assert code == 0 and out.is_file()
    graph = nn.load(graph_file)
    image = md.data.load_image("test:3")
    expected = md.visualize.project(graph, image, 5, 4)
    assert np.abs(expected).max() > 0
    assert f"figure written to {out}" in capsys.readouterr().out


@pytest.mark.parametrize("layer, message", [
    ("features.55", "--layer: no layer named 'features.55'"),
    ("3,4", "--layer: project takes one layer"),
    ("12", r"--layer: must be an index in \[-9, 9\)"),
])
def test_project_layer_errors(graph_file, tmp_path, capsys, layer, message):
    code = cli.main(["project", "--model", str(graph_file), "--image", "test:3",
                     "--layer", layer, "--channel", "0", "--out", str(tmp_path / "p.png")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(message, err[0])


def test_demo_refuses_a_graph_in_one_line(graph_file, tmp_path, capsys):
    code = cli.main(["demo", "--model", str(graph_file), "--out", str(tmp_path / "d")])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "use `minideconv figure2" in err[0]
    assert not (tmp_path / "d").exists()


def test_crosscheck_a_saved_graph_against_its_torch_conversion(graph_file, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("captum")
    code = cli.main(["crosscheck", "--model", str(graph_file), "--images", "2"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "layer 8 'add' (Add)" in out and "PASSED" in out
    # and it says what it compares: the file against its own conversion, not a torch model
    assert "against its own PyTorch conversion (to_torch)" in out
    assert "not the conversion from your torch model" in out


def test_crosscheck_a_graph_without_an_input_shape_is_refused(tmp_path, capsys):
    path = tmp_path / "g.npz"
    nn.Graph([("r", nn.ReLU(), "input")]).save(path)
    code = cli.main(["crosscheck", "--model", str(path)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--model:" in err[0] and "input shape" in err[0]
