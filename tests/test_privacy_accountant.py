"""The RDP accountant against published values (each with its source), the q = 1
closed form, and the definition of A_alpha integrated numerically."""
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minigrad import privacy
from minigrad.privacy.accountant import DEFAULT_ALPHAS, epsilon_from_rdp, log_erfc, rdp_sampled_gaussian


def accountant_with(*history):
    accountant = privacy.RDPAccountant()
    for noise_multiplier, sample_rate, steps in history:
        for _ in range(steps):
            accountant.step(noise_multiplier, sample_rate)
    return accountant


def test_epsilon_matches_opacus_published_test_value():
    """Opacus, opacus/tests/accountants_test.py, test_rdp_accountant: sigma 1.5, q 0.04,
    int(90 / 0.04) = 2250 steps, delta 1e-5 -> epsilon 7.32911117143 (assertAlmostEqual, 7 places)."""
    accountant = accountant_with((1.5, 0.04, int(90 / 0.04)))
    assert accountant.history == [(1.5, 0.04, 2250)]
    assert accountant.get_epsilon(1e-5) == pytest.approx(7.32911117143, abs=5e-8)


def test_rdp_matches_tf_privacy_published_values():
    """TensorFlow Privacy, tensorflow_privacy/privacy/analysis/rdp_accountant_test.py:
    test_compute_rdp_sequence: q 0.01, sigma 2.5, 50 steps at orders 1.5, 2.5, 5, 50, 100, inf
    -> 0.00065, 0.001085, 0.00218075, 0.023846, 167.416307, inf (within 1e-5);
    test_compute_rdp_scalar: q 0.1, sigma 2, 10 steps, order 5 -> 0.07737 (5 places);
    test_compute_rdp_no_sampling: q 1, sigma 10, order 20 -> 0.1; no data (q 0) -> 0."""
    orders = [1.5, 2.5, 5, 50, 100, math.inf]
    rdp = accountant_with((2.5, 0.01, 50)).rdp(orders)
    np.testing.assert_allclose(rdp[:-1], [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307], atol=1e-5)
    assert rdp[-1] == math.inf
    assert accountant_with((2.0, 0.1, 10)).rdp([5])[0] == pytest.approx(0.07737, abs=5e-6)
    assert rdp_sampled_gaussian(1.0, 10.0, 20) == 0.1
    assert rdp_sampled_gaussian(0.0, 10.0, 20) == 0.0


def test_rdp_to_epsilon_conversion_matches_published_values():
    """TensorFlow Privacy, rdp_accountant_test.py, test_get_privacy_spent_check_target_delta
    (with the Balle et al. 2020 conversion that TF Privacy, Google's dp_accounting and Opacus
    use): constant RDP 1.1 at orders 2..32 (pure DP), delta 1e-5 -> epsilon 1.32783806176 at
    order 32; the Gaussian (q 1) with sigma 4.530877117 over orders 1.000 .. 99.999 -> exactly
    (1, 1e-6)-DP. And the module docstring example of Opacus' analysis/rdp.py (from TF
    Privacy): steps (q 1e-5, sigma 1, 10) then (q 1e-4, sigma 3, 4), orders 2..32, delta 1e-5
    -> epsilon 0.336 at order 23."""
    epsilon, order = epsilon_from_rdp(range(2, 33), [1.1] * 31, 1e-5)
    assert epsilon == pytest.approx(1.32783806176, abs=1e-10) and order == 32
    orders = [0.001 * i for i in range(1000, 100000)]
    rdp = [rdp_sampled_gaussian(1.0, 4.530877117, alpha) for alpha in orders]
    assert epsilon_from_rdp(orders, rdp, 1e-6)[0] == pytest.approx(1.0, abs=1e-6)
    epsilon, order = accountant_with((1.0, 1e-5, 10), (3.0, 1e-4, 4)).get_privacy_spent(1e-5, range(2, 33))
    assert round(epsilon, 3) == 0.336 and order == 23


@settings(max_examples=20, deadline=None)
@given(sigma=st.floats(0.3, 20.0), steps=st.integers(1, 1000), alpha=st.sampled_from(DEFAULT_ALPHAS))
def test_sample_rate_one_is_the_gaussian_mechanism_closed_form(sigma, steps, alpha):
    """Without subsampling every step is the Gaussian mechanism: rho = alpha / (2 sigma^2) per step."""
    accountant = accountant_with((sigma, 1.0, 1))
    accountant.history = [(sigma, 1.0, steps)]
    assert accountant.rdp([alpha])[0] == pytest.approx(steps * alpha / (2 * sigma ** 2), rel=1e-12)


@pytest.mark.parametrize("q, sigma, alpha", [(0.01, 1.0, 2), (0.05, 0.8, 7), (0.2, 2.0, 3.5), (0.01, 1.1, 1.3),
                                             (0.1, 0.7, 12.5), (0.5, 3.0, 30.2)])
def test_log_a_equals_the_defining_integral(q, sigma, alpha):
    """A_alpha = E_{z ~ N(0, sigma^2)} [((1 - q) + q exp((2z - 1) / (2 sigma^2)))^alpha], integrated
    on a fine grid (trapezoid rule, float64) as an independent check of both series."""
    z = np.linspace(-40 * sigma - 10, 40 * sigma + 10 + alpha * 2, 400001)
    log_integrand = (-z ** 2 / (2 * sigma ** 2) - math.log(sigma * math.sqrt(2 * math.pi))
                     + alpha * np.log((1 - q) + q * np.exp((2 * z - 1) / (2 * sigma ** 2))))
    peak = log_integrand.max()
    log_a = peak + math.log(np.trapezoid(np.exp(log_integrand - peak), z))
    assert rdp_sampled_gaussian(q, sigma, alpha) * (alpha - 1) == pytest.approx(log_a, rel=1e-6, abs=1e-12)


def test_more_steps_or_more_sampling_cost_more_and_none_costs_nothing():
    base = accountant_with((1.0, 0.01, 100)).get_epsilon(1e-5)
    assert accountant_with((1.0, 0.01, 200)).get_epsilon(1e-5) > base
    assert accountant_with((1.0, 0.02, 100)).get_epsilon(1e-5) > base
    assert accountant_with((2.0, 0.01, 100)).get_epsilon(1e-5) < base
    assert privacy.RDPAccountant().get_epsilon(1e-5) == 0.0
    assert accountant_with((0.0, 0.01, 1)).get_epsilon(1e-5) == math.inf
    with pytest.raises(ValueError, match="delta"):
        accountant_with((1.0, 0.01, 1)).get_epsilon(0.0)
    with pytest.raises(ValueError, match="sample_rate"):
        privacy.RDPAccountant().step(1.0, 1.5)


def test_log_erfc_is_accurate_where_erfc_underflows():
    for x in (-3.0, 0.0, 1.0, 10.0, 24.9):
        assert log_erfc(x) == pytest.approx(math.log(math.erfc(x)), rel=1e-13)
    # erfc(30) = 2.5646562037561116e-393 (mpmath; below the smallest double): log = -903.974117...
    assert log_erfc(30.0) == pytest.approx(math.log(2.5646562037561116) - 393 * math.log(10), rel=1e-12)
    assert abs(log_erfc(25.0) - math.log(math.erfc(25.0))) < 1e-12     # the two formulas meet


def test_get_noise_multiplier_finds_the_noise_for_a_target_epsilon():
    """Opacus' accountants_test.py asks for epsilon 8 at delta 1e-5, q 0.04, 2000 steps and gets
    sigma 1.3562 (to 4 places) from its own bisection; ours stops within 0.01 of the target."""
    sigma = privacy.get_noise_multiplier(8.0, 1e-5, 0.04, 2000)
    spent = accountant_with((sigma, 0.04, 1))
    spent.history = [(sigma, 0.04, 2000)]
    assert 7.99 < spent.get_epsilon(1e-5) <= 8.0
    assert sigma == pytest.approx(1.3562, abs=2e-3)
