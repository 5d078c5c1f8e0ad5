"""Privacy accounting for DP-SGD with Renyi differential privacy (RDP).

1. Renyi DP (Mironov 2017, "Renyi Differential Privacy", CSF). A mechanism M is
   (alpha, rho)-RDP if for every pair of data sets D, D' that differ in one example

       D_alpha(M(D) || M(D')) = 1/(alpha - 1) log E_{z ~ M(D')} [(p_D(z) / p_D'(z))^alpha] <= rho.

   Two facts make it the accountant's currency:
     * composition adds: k steps that are (alpha, rho_i)-RDP are (alpha, sum rho_i)-RDP;
     * the Gaussian mechanism f(D) + N(0, sigma^2 C^2) with sensitivity C is
       (alpha, alpha / (2 sigma^2))-RDP for every alpha (Mironov 2017, Prop. 7):
       for N(0, s^2) against N(1, s^2), D_alpha = alpha / (2 s^2), here s = sigma.

2. The sampled Gaussian mechanism (Mironov, Talwar, Zhang 2019, "Renyi Differential
   Privacy of the Sampled Gaussian Mechanism", arXiv:1908.10530). One DP-SGD step
   includes each example with probability q (Poisson sampling), sums the clipped
   gradients and adds N(0, sigma^2 C^2). Scaled by C, one coordinate along the
   differing example compares

       mu_0 = N(0, sigma^2)      (the example absent)
       mu_1 = (1 - q) N(0, sigma^2) + q N(1, sigma^2)      (present with probability q)

   and the step is (alpha, log(A_alpha) / (alpha - 1))-RDP with

       A_alpha = E_{z ~ mu_0} [(mu_1(z) / mu_0(z))^alpha],
       mu_1(z) / mu_0(z) = (1 - q) + q exp((2z - 1) / (2 sigma^2)).

   Integer alpha: expand the power binomially and use, for z ~ N(0, sigma^2),
   E[exp(i (2z - 1) / (2 sigma^2))] = exp((i^2 - i) / (2 sigma^2)):

       A_alpha = sum_{i=0..alpha} C(alpha, i) (1 - q)^(alpha - i) q^i exp((i^2 - i) / (2 sigma^2)).

   Fractional alpha (section 3.3 of the paper): split the integral at
   z0 = sigma^2 log(1/q - 1) + 1/2, where the two terms of mu_1 / mu_0 are equal, and
   expand (x + y)^alpha as a binomial series around the larger term on each side. The
   i-th terms become Gaussian integrals over half-lines:

       A_alpha = sum_{i>=0} C(alpha, i) [ q^i (1-q)^(alpha-i) e^((i^2-i)/(2 sigma^2)) * erfc((i - z0) / (sqrt2 sigma)) / 2
                                        + q^(alpha-i) (1-q)^i e^((j^2-j)/(2 sigma^2)) * erfc((z0 - j) / (sqrt2 sigma)) / 2 ],
       j = alpha - i,

   summed in log space (the C(alpha, i) change sign past i > alpha) until both terms
   fall below e^-30. With q = 1 every step is the plain Gaussian: rho = alpha / (2 sigma^2).

3. From RDP to (epsilon, delta)-DP (Balle, Barthe, Gaboardi, Hsu, Sato 2020,
   "Hypothesis Testing Interpretations and Renyi Differential Privacy", Theorem 21):
   (alpha, rho)-RDP implies (epsilon, delta)-DP with

       epsilon = rho + log((alpha - 1) / alpha) - (log delta + log alpha) / (alpha - 1),

   a little tighter than Mironov 2017's epsilon = rho + log(1/delta) / (alpha - 1).
   The accountant evaluates it at every order and keeps the smallest epsilon.

These are the orders and the conversion of Opacus' RDPAccountant (which computes
A_alpha as TF Privacy does), so the two report the same epsilon for the same steps.
"""
import math

DEFAULT_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))


def _log_add(log_x, log_y):
    """log(e^log_x + e^log_y), without overflow."""
    low, high = min(log_x, log_y), max(log_x, log_y)
    if low == -math.inf:
        return high
    return high + math.log1p(math.exp(low - high))


def _log_sub(log_x, log_y):
    """log(e^log_x - e^log_y) for log_x >= log_y."""
    if log_y == -math.inf:
        return log_x
    if log_x <= log_y:
        return -math.inf            # the true difference is 0 (or rounding made it negative)
    try:
        return log_y + math.log(math.expm1(log_x - log_y))
    except OverflowError:
        return log_x


def log_erfc(x):
    """log(erfc(x)), accurate also where erfc(x) underflows (x > 26): there the
    asymptotic series erfc(x) = e^(-x^2) / (x sqrt(pi)) sum_k (-1)^k (2k - 1)!! / (2x^2)^k, whose
    terms past k = 5 are below 1e-15 of the sum for x >= 25."""
    if x < 25.0:
        return math.log(math.erfc(x))
    series, term = 1.0, 1.0
    for k in range(1, 6):
        term *= -(2 * k - 1) / (2 * x * x)
        series += term
    return -x * x - math.log(x * math.sqrt(math.pi)) + math.log(series)


def _log_a_integer(q, sigma, alpha):
    """log A_alpha by the finite binomial sum (integer alpha)."""
    log_a = -math.inf
    for i in range(alpha + 1):
        log_term = (math.lgamma(alpha + 1) - math.lgamma(i + 1) - math.lgamma(alpha - i + 1)
                    + i * math.log(q) + (alpha - i) * math.log(1 - q) + (i * i - i) / (2 * sigma ** 2))
        log_a = _log_add(log_a, log_term)
    return log_a


def _log_a_fractional(q, sigma, alpha):
    """log A_alpha by the two binomial series split at z0 (fractional alpha)."""
    log_below, log_above = -math.inf, -math.inf          # the integrals over z <= z0 and z > z0
    z0 = sigma ** 2 * math.log(1 / q - 1) + 0.5
    binomial = 1.0                                        # C(alpha, i), updated term by term
    i = 0
    while True:
        j = alpha - i
        log_binomial = math.log(abs(binomial))
        log_below_term = (log_binomial + i * math.log(q) + j * math.log(1 - q) + (i * i - i) / (2 * sigma ** 2)
                          + math.log(0.5) + log_erfc((i - z0) / (math.sqrt(2) * sigma)))
        log_above_term = (log_binomial + j * math.log(q) + i * math.log(1 - q) + (j * j - j) / (2 * sigma ** 2)
                          + math.log(0.5) + log_erfc((z0 - j) / (math.sqrt(2) * sigma)))
        if binomial > 0:
            log_below, log_above = _log_add(log_below, log_below_term), _log_add(log_above, log_above_term)
        else:
            log_below, log_above = _log_sub(log_below, log_below_term), _log_sub(log_above, log_above_term)
        if max(log_below_term, log_above_term) < -30:
            return _log_add(log_below, log_above)
        binomial *= (alpha - i) / (i + 1)
        i += 1


def rdp_sampled_gaussian(sample_rate, noise_multiplier, alpha):
    """rho(alpha) of one step of the sampled Gaussian mechanism (module docstring, 2)."""
    if sample_rate == 0:
        return 0.0
    if noise_multiplier == 0 or math.isinf(alpha):
        return math.inf
    if sample_rate == 1.0:
        return alpha / (2 * noise_multiplier ** 2)
    if float(alpha).is_integer():
        log_a = _log_a_integer(sample_rate, noise_multiplier, int(alpha))
    else:
        log_a = _log_a_fractional(sample_rate, noise_multiplier, alpha)
    return log_a / (alpha - 1)


def epsilon_from_rdp(alphas, rdp, delta):
    """(epsilon, best alpha): the smallest epsilon over the orders of (alpha, rho)-RDP
    at the given delta (module docstring, 3). epsilon is inf when every rho is."""
    if not 0 < delta < 1:
        raise ValueError(f"RDPAccountant: delta must be in (0, 1), got {delta}")
    best = (math.inf, math.nan)
    for alpha, rho in zip(alphas, rdp):
        if alpha <= 1 or math.isinf(rho):
            continue
        epsilon = rho + math.log((alpha - 1) / alpha) - (math.log(delta) + math.log(alpha)) / (alpha - 1)
        if epsilon < best[0]:
            best = (epsilon, alpha)
    return best


class RDPAccountant:
    """Keeps the steps of DP-SGD and says what (epsilon, delta) they have spent.

        accountant.step(noise_multiplier, sample_rate)      once per optimizer step
        accountant.get_epsilon(delta) -> float               epsilon after all the steps so far

    history: [(noise_multiplier, sample_rate, steps)], equal consecutive steps merged
    (as Opacus keeps it). The orders are Opacus' DEFAULT_ALPHAS unless `alphas` is given.
    """

    def __init__(self):
        self.history = []

    def step(self, noise_multiplier, sample_rate):
        if not 0 <= sample_rate <= 1:
            raise ValueError(f"RDPAccountant.step: sample_rate must be in [0, 1], got {sample_rate}")
        if noise_multiplier < 0:
            raise ValueError(f"RDPAccountant.step: noise_multiplier must be >= 0, got {noise_multiplier}")
        if self.history and self.history[-1][:2] == (noise_multiplier, sample_rate):
            self.history[-1] = (noise_multiplier, sample_rate, self.history[-1][2] + 1)
        else:
            self.history.append((noise_multiplier, sample_rate, 1))

    def __len__(self):
        """The number of steps taken."""
        return sum(steps for _, _, steps in self.history)

    def rdp(self, alphas=None):
        """rho(alpha) of all the steps so far: the per-step RDP, times the steps, summed."""
        alphas = DEFAULT_ALPHAS if alphas is None else list(alphas)
        return [sum(steps * rdp_sampled_gaussian(rate, sigma, alpha) for sigma, rate, steps in self.history)
                for alpha in alphas]

    def get_privacy_spent(self, delta, alphas=None):
        """(epsilon, the order alpha that gives it)."""
        alphas = DEFAULT_ALPHAS if alphas is None else list(alphas)
        if not self.history:
            return 0.0, math.nan
        return epsilon_from_rdp(alphas, self.rdp(alphas), delta)

    def get_epsilon(self, delta, alphas=None):
        return float(self.get_privacy_spent(delta, alphas)[0])

    def __repr__(self):
        return f"RDPAccountant(steps={len(self)}, history={self.history})"


def get_noise_multiplier(target_epsilon, delta, sample_rate, steps, epsilon_tolerance=0.01):
    """The smallest noise_multiplier (to within the tolerance) whose `steps` steps at
    `sample_rate` spend at most target_epsilon at this delta (Opacus' get_noise_multiplier,
    by bisection: epsilon falls as sigma grows). Returns sigma with
    target_epsilon - epsilon_tolerance < epsilon(sigma) <= target_epsilon."""
    if target_epsilon <= 0:
        raise ValueError(f"get_noise_multiplier: target_epsilon must be > 0, got {target_epsilon}")

    def epsilon(sigma):
        accountant = RDPAccountant()
        accountant.history = [(sigma, sample_rate, steps)]
        return accountant.get_epsilon(delta)
    low, high = 0.0, 10.0
    while epsilon(high) > target_epsilon:
        low, high = high, 2 * high
        if high > 1e6:
            raise ValueError(f"get_noise_multiplier: no noise multiplier reaches epsilon {target_epsilon}")
    while True:
        middle = (low + high) / 2
        spent = epsilon(middle)
        if spent > target_epsilon:
            low = middle
        elif spent > target_epsilon - epsilon_tolerance:
            return middle
        else:
            high = middle
