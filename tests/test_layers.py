"""Layers of MODTT: the batched module encoder/decoder against a per-module loop, and couplings."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from scmodtt.nn import ModularDecoder, ModularEncoder, TokenCoupling


def _membership(n_features: int, n_modules: int, seed: int = 0):
    """Coordinate-form membership with overlapping modules and features in no module.

    Every module has at least one feature, a few features are in two or three modules, and the
    last two features are in none.
    """
    rng = np.random.default_rng(seed)
    table = np.zeros((n_features, n_modules), dtype=bool)
    assigned = n_features - 2
    table[np.arange(assigned), rng.integers(0, n_modules, assigned)] = True
    table[np.arange(n_modules), np.arange(n_modules)] = True  # no empty module
    for feature in rng.choice(assigned, size=5, replace=False):
        table[feature, rng.choice(n_modules, size=2, replace=False)] = True
    feature_index, module_index = np.nonzero(table)
    return table, torch.as_tensor(feature_index), torch.as_tensor(module_index)


def _encoder_reference(encoder: ModularEncoder, x: torch.Tensor, table: np.ndarray) -> torch.Tensor:
    """One ``nn.Linear`` per module, looped: module ``m``'s features → its ``d_e`` token."""
    tokens = []
    for m in range(table.shape[1]):
        entries = torch.nonzero(encoder.module_index == m).ravel()
        features = encoder.feature_index[entries]
        np.testing.assert_array_equal(np.sort(features.numpy()), np.flatnonzero(table[:, m]))
        weight = encoder.weight[entries].T  # (d_e, n_features_in_module) as in nn.Linear
        tokens.append(F.linear(x[:, features], weight, encoder.bias[m]))
    return torch.stack(tokens, dim=1)


def _decoder_reference(decoder: ModularDecoder, tokens: torch.Tensor) -> torch.Tensor:
    """Each module predicts its features from its own token; overlapping predictions averaged."""
    n = tokens.shape[0]
    total = torch.zeros(n, decoder.n_outputs, decoder.n_features, dtype=tokens.dtype)
    count = torch.zeros(decoder.n_features)
    for m in range(decoder.n_modules):
        entries = torch.nonzero(decoder.module_index == m).ravel()
        features = decoder.feature_index[entries]
        for o in range(decoder.n_outputs):
            prediction = F.linear(tokens[:, m], decoder.weight[o, entries])  # (n, n_m)
            total[:, o, features] += prediction
        count[features] += 1
    return total / count.clamp(min=1.0) + decoder.bias


@pytest.mark.parametrize("module_dim", [1, 4])
def test_modular_encoder_equals_per_module_linear_loop(module_dim):
    torch.manual_seed(0)
    n_features, n_modules = 40, 6
    table, feature_index, module_index = _membership(n_features, n_modules)
    encoder = ModularEncoder(feature_index, module_index, n_features, n_modules, module_dim)
    with torch.no_grad():
        encoder.bias.normal_()  # zero at initialisation: make the test see it
    x = torch.randn(9, n_features)

    tokens = encoder(x)
    expected = _encoder_reference(encoder, x, table)
    assert tokens.shape == (9, n_modules, module_dim)
    torch.testing.assert_close(tokens, expected)

    # The batched op has the same gradients as the loop.
    weights = torch.randn_like(tokens)
    grads = torch.autograd.grad((tokens * weights).sum(), [encoder.weight, encoder.bias])
    expected_grads = torch.autograd.grad(
        (_encoder_reference(encoder, x, table) * weights).sum(), [encoder.weight, encoder.bias]
    )
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad)


def test_modular_encoder_ignores_features_in_no_module():
    torch.manual_seed(0)
    table, feature_index, module_index = _membership(30, 4)
    encoder = ModularEncoder(feature_index, module_index, 30, 4, 3)
    x = torch.randn(5, 30)
    x_changed = x.clone()
    unassigned = ~table.any(axis=1)
    x_changed[:, torch.as_tensor(unassigned)] += 100.0
    torch.testing.assert_close(encoder(x), encoder(x_changed))


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_modular_decoder_equals_per_module_loop_with_averaged_overlaps(n_outputs):
    torch.manual_seed(1)
    n_features, n_modules, module_dim = 35, 5, 4
    table, feature_index, module_index = _membership(n_features, n_modules, seed=1)
    assert (table.sum(axis=1) > 1).any() and (table.sum(axis=1) == 0).any()
    decoder = ModularDecoder(
        feature_index, module_index, n_features, n_modules, module_dim, n_outputs
    )
    with torch.no_grad():
        decoder.bias.normal_()
    tokens = torch.randn(7, n_modules, module_dim)

    outputs = decoder(tokens)
    assert outputs.shape == (7, n_outputs, n_features)
    torch.testing.assert_close(outputs, _decoder_reference(decoder, tokens))
    # A feature in no module is predicted by its bias alone.
    unassigned = np.flatnonzero(table.sum(axis=1) == 0)
    torch.testing.assert_close(
        outputs[:, :, unassigned], decoder.bias[:, unassigned].expand(7, -1, -1)
    )

    weights = torch.randn_like(outputs)
    params = [decoder.weight, decoder.bias]
    grads = torch.autograd.grad((outputs * weights).sum(), params)
    expected_grads = torch.autograd.grad(
        (_decoder_reference(decoder, tokens) * weights).sum(), params
    )
    for grad, expected_grad in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, expected_grad)


def test_modular_layers_backward_is_deterministic():
    """Bitwise-identical gradients on repeated passes (needed for seeded, reproducible training)."""
    torch.manual_seed(0)
    n_features, n_modules, module_dim = 300, 7, 4
    _, feature_index, module_index = _membership(n_features, n_modules, seed=2)
    encoder = ModularEncoder(feature_index, module_index, n_features, n_modules, module_dim)
    decoder = ModularDecoder(feature_index, module_index, n_features, n_modules, module_dim, 2)
    parameters = [*encoder.parameters(), *decoder.parameters()]
    x = torch.randn(512, n_features)

    def gradients():
        out = decoder(torch.relu(encoder(x)))
        return torch.autograd.grad(out.pow(2).sum(), parameters)

    first = gradients()
    for _ in range(5):
        for grad, reference in zip(gradients(), first, strict=True):
            assert torch.equal(grad, reference)


def test_modular_layers_reject_inconsistent_membership():
    with pytest.raises(ValueError, match="equal length"):
        ModularEncoder(torch.arange(5), torch.zeros(4, dtype=torch.long), 5, 1, 2)
    with pytest.raises(ValueError, match="equal length"):
        ModularDecoder(torch.arange(5), torch.zeros(4, dtype=torch.long), 5, 1, 2)


@pytest.mark.parametrize("coupling", ["dense", "tt"])
def test_token_coupling_shape_and_gradients(coupling):
    torch.manual_seed(0)
    n_modules, module_dim = 12, 4
    layer = TokenCoupling(n_modules, module_dim, coupling=coupling, tt_rank=3)
    tokens = torch.randn(6, n_modules, module_dim, requires_grad=True)

    out = layer(tokens)
    assert out.shape == (6, n_modules, module_dim)
    assert torch.isfinite(out).all()

    out.pow(2).sum().backward()
    assert tokens.grad is not None and tokens.grad.abs().sum() > 0
    for name, parameter in layer.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
        assert parameter.grad.abs().sum() > 0, name


def _as_matrix(layer: TokenCoupling) -> tuple[torch.Tensor, torch.Tensor]:
    """The (weight, bias) of the affine map ``flatten(tokens) -> flatten(out)``, by probing it."""
    width = layer.n_modules * layer.module_dim
    with torch.no_grad():
        bias = layer(torch.zeros(1, layer.n_modules, layer.module_dim)).reshape(width)
        basis = torch.eye(width).reshape(width, layer.n_modules, layer.module_dim)
        weight = (layer(basis).reshape(width, width) - bias).T  # (out, in)
    return weight, bias


@pytest.mark.parametrize("rank", [1, 2])
def test_tt_coupling_factorises_over_modules_and_token_dims(rank):
    """A block-TT map on the (M, d_e) token grid is a sum of ``rank`` Kronecker products
    ``A_k (M×M) ⊗ B_k (d_e×d_e)``: rearranged to (M·M) × (d_e·d_e), its weight has rank ≤ r.
    A dense map has full rank there, so this checks that TT acts on the (module, dim) axes.
    """
    torch.manual_seed(0)
    n_modules, module_dim = 6, 3
    for coupling, expected_rank in (("tt", rank), ("dense", module_dim**2)):
        layer = TokenCoupling(n_modules, module_dim, coupling=coupling, tt_rank=rank)
        weight, _ = _as_matrix(layer)
        blocks = weight.reshape(n_modules, module_dim, n_modules, module_dim)
        rearranged = blocks.permute(0, 2, 1, 3).reshape(n_modules**2, module_dim**2)
        assert torch.linalg.matrix_rank(rearranged.double(), rtol=1e-5) == expected_rank


def test_tt_coupling_has_fewer_parameters_than_dense():
    n_modules, module_dim, rank = 70, 4, 4
    tt = TokenCoupling(n_modules, module_dim, coupling="tt", tt_rank=rank)
    dense = TokenCoupling(n_modules, module_dim, coupling="dense")
    width = n_modules * module_dim
    expected_tt = n_modules**2 * rank + module_dim**2 * rank + width
    expected_dense = width**2 + width

    n_tt = sum(p.numel() for p in tt.parameters() if p.requires_grad)
    n_dense = sum(p.numel() for p in dense.parameters() if p.requires_grad)
    assert n_tt == expected_tt
    assert n_dense == expected_dense
    assert n_tt < n_dense


def test_token_coupling_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`coupling` must be one of"):
        TokenCoupling(4, 2, coupling="cp")
    with pytest.raises(ValueError, match="`tt_rank` must be a positive integer"):
        TokenCoupling(4, 2, coupling="tt", tt_rank=0)
    with pytest.raises(ValueError, match="`tt_rank` must be a positive integer"):
        TokenCoupling(4, 2, coupling="tt", tt_rank=1.5)


@pytest.mark.parametrize(("n_modules", "module_dim", "rank"), [(6, 4, 2), (5, 3, 4), (1, 5, 1)])
def test_tt_contraction_equals_the_rebuilt_matrix(n_modules, module_dim, rank):
    """Core-by-core contraction and the rebuilt (M·d_e)² matrix are the same map, gradients too."""
    torch.manual_seed(0)
    layer = TokenCoupling(n_modules, module_dim, coupling="tt", tt_rank=rank)
    with torch.no_grad():
        layer.linear.bias.normal_()
    tokens = torch.randn(7, n_modules, module_dim)
    contracted = layer.contract(tokens)
    rebuilt = layer.linear(tokens.reshape(7, -1)).reshape(tokens.shape)
    torch.testing.assert_close(contracted, rebuilt)
    weights = torch.randn_like(rebuilt)
    params = list(layer.parameters())
    torch.testing.assert_close(
        torch.autograd.grad((contracted * weights).sum(), params),
        torch.autograd.grad((rebuilt * weights).sum(), params),
    )


def test_tt_coupling_contracts_when_the_rank_is_small():
    """The cheaper evaluation is chosen by multiply-add count: low rank → contraction."""
    from scmodtt.nn._coupling import tt_contraction_is_cheaper

    assert tt_contraction_is_cheaper(256, 70, 16, 4)
    assert not tt_contraction_is_cheaper(256, 70, 8, 16)
    assert not tt_contraction_is_cheaper(256, 70, 8, 8)  # the default size rebuilds
    layer = TokenCoupling(20, 16, coupling="tt", tt_rank=2)
    tokens = torch.randn(64, 20, 16)
    called = []
    original = layer.contract
    layer.contract = lambda t: called.append(1) or original(t)
    torch.testing.assert_close(
        layer(tokens), layer.linear(tokens.reshape(64, -1)).reshape(tokens.shape)
    )
    assert called
