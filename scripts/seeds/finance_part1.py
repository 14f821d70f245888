# ruff: noqa: E501  (seed texts are data: one string per line)
"""Finance seeds, part 1: sentiment, numeric reasoning (every number computed here), unit conversion."""

S = []  # (name, instruction, [(input, output)], is_classification, task_type)


def add(name, instruction, instances, cls, ttype):
    S.append((name, instruction, instances, cls, ttype))


# --- sentiment_classification (8) -----------------------------------------------------------------
T = "sentiment_classification"
add(
    "headline-sentiment-profit-warning",
    "Classify the sentiment of this financial news headline for the company's shareholders as positive, negative, or neutral.",
    [
        ("Harrowgate Foods cuts full-year profit forecast as ingredient costs climb", "negative"),
        ("Veltrix Semiconductors wins five-year supply contract with major carmaker", "positive"),
    ],
    True,
    T,
)
add(
    "sentence-sentiment-earnings-call",
    "Is the following sentence from an earnings call positive, negative, or neutral for investors?",
    [
        (
            "Our order backlog grew for the sixth straight quarter and now covers almost two years of production.",
            "positive",
        )
    ],
    True,
    T,
)
add(
    "sentiment-neutral-announcement",
    "Label the sentiment of the announcement: positive, negative, or neutral.",
    [
        (
            "Bluefin Logistics will hold its annual general meeting on 14 May at its head office in Rotterdam.",
            "neutral",
        )
    ],
    True,
    T,
)
add(
    "sentiment-credit-downgrade",
    "What is the sentiment of this news for bondholders of the company? Answer positive, negative, or neutral.",
    [
        (
            "A rating agency lowered Corlane Retail's long-term credit rating by two notches, citing rising debt and falling store sales.",
            "negative",
        )
    ],
    True,
    T,
)
add(
    "sentiment-dividend-increase",
    "Decide whether this statement is positive, negative, or neutral for the company's share price.",
    [
        (
            "Northmere Bank raised its quarterly dividend by 12% and announced a share buyback programme.",
            "positive",
        )
    ],
    True,
    T,
)
add(
    "sentiment-mixed-results",
    "Read the short market report and give its overall sentiment toward the company: positive, negative, or neutral.",
    [
        (
            "Pellham Textiles reported revenue in line with expectations, but operating margin fell from 9% to 6% and management withdrew its guidance for next year.",
            "negative",
        )
    ],
    True,
    T,
)
add(
    "sentiment-tweet-investor",
    "Classify the investor's post about a stock as bullish, bearish, or neutral.",
    [
        (
            "Just added more Quillon Software to my portfolio, subscriptions are growing faster than anyone expected.",
            "bullish",
        ),
        ("Selling my Tamsin Motors shares before the recall news gets worse.", "bearish"),
    ],
    True,
    T,
)
add(
    "sentiment-regulatory-fine",
    "Give the sentiment of the news item for the company: positive, negative, or neutral.",
    [
        (
            "Regulators fined Glenmoor Telecom 40 million euros for misleading customers about broadband speeds.",
            "negative",
        )
    ],
    True,
    T,
)

# --- numeric_reasoning (14): every answer is computed below ----------------------------------------
T = "numeric_reasoning"
rev0, rev1 = 820.0, 943.0
g = (rev1 - rev0) / rev0 * 100
assert round(g, 1) == 15.0
add(
    "revenue-growth-rate",
    "Calculate the year-over-year revenue growth rate from the figures below. Show the calculation.",
    [
        (
            "Kestrel Dynamics revenue: 2022 $820 million; 2023 $943 million.",
            "Growth = (943 - 820) / 820 = 123 / 820 = 0.15, so revenue grew 15.0% year over year.",
        )
    ],
    False,
    T,
)

rev, gp = 1250.0, 475.0
assert gp / rev * 100 == 38.0
add(
    "gross-margin",
    "Compute the gross margin as a percentage of revenue.",
    [
        (
            "Revenue: $1,250 million. Cost of goods sold: $775 million.",
            "Gross profit = 1,250 - 775 = $475 million. Gross margin = 475 / 1,250 = 38.0%.",
        )
    ],
    False,
    T,
)
assert 1250 - 775 == 475

ca, cl = 640.0, 400.0
assert ca / cl == 1.6
add(
    "current-ratio",
    "Calculate the current ratio and say whether current assets cover current liabilities.",
    [
        (
            "Lanthorn Media balance sheet: current assets $640 million; current liabilities $400 million.",
            "Current ratio = 640 / 400 = 1.6. Current assets cover current liabilities 1.6 times, so short-term obligations are covered.",
        )
    ],
    False,
    T,
)

debt, eq = 900.0, 1500.0
assert debt / eq == 0.6
add(
    "debt-to-equity",
    "What is the debt-to-equity ratio? Give the number and a one-line interpretation.",
    [
        (
            "Total debt: $900 million. Total shareholders' equity: $1,500 million.",
            "Debt-to-equity = 900 / 1,500 = 0.6: the company uses 60 cents of debt for every dollar of equity.",
        )
    ],
    False,
    T,
)

price, eps = 42.0, 3.5
assert price / eps == 12.0
add(
    "price-earnings-ratio",
    "Compute the price-to-earnings ratio from the share price and earnings per share.",
    [
        (
            "Share price: $42.00. Earnings per share over the last twelve months: $3.50.",
            "P/E = 42.00 / 3.50 = 12.0. Investors pay $12 for each $1 of annual earnings.",
        )
    ],
    False,
    T,
)

ni, shares = 186.0, 60.0
assert ni / shares == 3.1
add(
    "earnings-per-share",
    "Calculate basic earnings per share.",
    [
        (
            "Net income attributable to shareholders: $186 million. Weighted average shares outstanding: 60 million.",
            "Basic EPS = 186 / 60 = $3.10 per share.",
        )
    ],
    False,
    T,
)

start, end, years = 10000.0, 14641.0, 4
cagr = (end / start) ** (1 / years) - 1
assert abs(cagr - 0.10) < 1e-12
add(
    "cagr-four-years",
    "Calculate the compound annual growth rate (CAGR) of the investment.",
    [
        (
            "An investment grew from $10,000 to $14,641 over 4 years.",
            "CAGR = (14,641 / 10,000)^(1/4) - 1 = 1.4641^(0.25) - 1 = 1.10 - 1 = 10% per year.",
        )
    ],
    False,
    T,
)

p, r, n = 5000.0, 0.04, 3
fv = p * (1 + r) ** n
assert round(fv, 2) == 5624.32
add(
    "compound-interest",
    "How much will the deposit be worth? Interest is compounded annually.",
    [
        (
            "A deposit of $5,000 earns 4% interest per year for 3 years.",
            "Value = 5,000 x 1.04^3 = 5,000 x 1.124864 = $5,624.32.",
        )
    ],
    False,
    T,
)
assert round(1.04**3, 6) == 1.124864

ebit, interest = 300.0, 75.0
assert ebit / interest == 4.0
add(
    "interest-coverage",
    "Compute the interest coverage ratio (EBIT divided by interest expense) and explain what it means.",
    [
        (
            "Operating profit (EBIT): $300 million. Interest expense: $75 million.",
            "Interest coverage = 300 / 75 = 4.0. Operating profit is four times the interest bill.",
        )
    ],
    False,
    T,
)

ni2, eq_begin, eq_end = 132.0, 1000.0, 1200.0
roe = ni2 / ((eq_begin + eq_end) / 2) * 100
assert roe == 12.0
add(
    "return-on-equity-average",
    "Calculate return on equity using average shareholders' equity.",
    [
        (
            "Net income: $132 million. Shareholders' equity: $1,000 million at the start of the year and $1,200 million at the end.",
            "Average equity = (1,000 + 1,200) / 2 = $1,100 million. ROE = 132 / 1,100 = 12.0%.",
        )
    ],
    False,
    T,
)

cfo, capex = 410.0, 165.0
assert cfo - capex == 245.0
add(
    "free-cash-flow",
    "Calculate free cash flow from the cash flow statement items.",
    [
        (
            "Cash from operating activities: $410 million. Capital expenditures: $165 million.",
            "Free cash flow = 410 - 165 = $245 million.",
        )
    ],
    False,
    T,
)

fixed, price_u, var_u = 240000.0, 50.0, 30.0
be = fixed / (price_u - var_u)
assert be == 12000.0
add(
    "break-even-units",
    "How many units must be sold to break even?",
    [
        (
            "Fixed costs: $240,000 per year. Selling price: $50 per unit. Variable cost: $30 per unit.",
            "Contribution per unit = 50 - 30 = $20. Break-even volume = 240,000 / 20 = 12,000 units.",
        )
    ],
    False,
    T,
)

div, price2 = 1.8, 45.0
assert round(div / price2 * 100, 10) == 4.0
add(
    "dividend-yield",
    "Compute the dividend yield.",
    [
        (
            "Annual dividend per share: $1.80. Share price: $45.00.",
            "Dividend yield = 1.80 / 45.00 = 0.04 = 4.0%.",
        )
    ],
    False,
    T,
)

inv_cogs, inv_avg = 730.0, 146.0
turns = inv_cogs / inv_avg
days = 365 / turns
assert turns == 5.0 and days == 73.0
add(
    "inventory-turnover-days",
    "Calculate inventory turnover and days inventory outstanding (use 365 days).",
    [
        (
            "Cost of goods sold: $730 million. Average inventory: $146 million.",
            "Inventory turnover = 730 / 146 = 5.0 times a year. Days inventory outstanding = 365 / 5.0 = 73 days.",
        )
    ],
    False,
    T,
)

# --- unit_conversion (7) -------------------------------------------------------------------------------
T = "unit_conversion"
assert round((0.0525 - 0.0475) * 10000) == 50
add(
    "rate-change-basis-points",
    "Express the change in the interest rate in basis points.",
    [
        (
            "The central bank raised its policy rate from 4.75% to 5.25%.",
            "The rate rose by 0.50 percentage points, which is 50 basis points.",
        )
    ],
    False,
    T,
)
add(
    "millions-to-billions",
    "Convert the amount to billions.",
    [("$3,450 million", "$3.45 billion"), ("$780 million", "$0.78 billion")],
    False,
    T,
)
assert 3450 / 1000 == 3.45 and 780 / 1000 == 0.78
eur, rate = 2500.0, 1.08
assert round(eur * rate, 2) == 2700.0
add(
    "currency-conversion",
    "Convert the amount using the exchange rate given.",
    [("Convert 2,500 euros to US dollars at 1 EUR = 1.08 USD.", "2,500 x 1.08 = 2,700 US dollars.")],
    False,
    T,
)
assert round(0.0035 * 100, 2) == 0.35
add(
    "basis-points-to-percent",
    "Write the fee as a percentage.",
    [("An annual management fee of 35 basis points.", "35 basis points = 0.35% per year.")],
    False,
    T,
)
a = 12000.0 * 0.35 / 100
assert a == 42.0
add(
    "fee-on-balance",
    "Calculate the annual fee in dollars.",
    [("A fund charges 0.35% a year on a $12,000 balance.", "12,000 x 0.0035 = $42 per year.")],
    False,
    T,
)
m = (1 + 0.12 / 12) ** 12 - 1
assert round(m * 100, 2) == 12.68
add(
    "apr-to-effective-annual-rate",
    "Convert the nominal annual rate compounded monthly into an effective annual rate.",
    [
        (
            "A loan charges 12% a year, compounded monthly.",
            "Monthly rate = 12% / 12 = 1%. Effective annual rate = 1.01^12 - 1 = 0.1268, or about 12.68%.",
        )
    ],
    False,
    T,
)
assert round(1.01**12 - 1, 4) == 0.1268
assert round(18 / 12 * 100, 1) == 150.0 and round((18 - 12) / 12 * 100, 1) == 50.0
add(
    "percent-change-vs-percentage-points",
    "State the change both in percentage points and as a percent change.",
    [
        (
            "A company's market share went from 12% to 18%.",
            "The share rose by 6 percentage points, which is a 50% increase relative to 12% ((18 - 12) / 12 = 0.5).",
        )
    ],
    False,
    T,
)
