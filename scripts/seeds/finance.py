# ruff: noqa: E501  (seed texts are data: one string per line)
"""The finance seed tasks (seeds/finance.jsonl), written by hand, with the arithmetic checked.

``python scripts/seeds/finance.py seeds/finance.jsonl`` rewrites the file; every number an answer
states is recomputed by an ``assert`` next to it (tests/test_domains.py runs this and compares the
bytes with the shipped file). The companies, tickers and people are fictional. This part: relations,
risks, comparisons, multiple choice and factoid QA; finance_part1/2 hold the others.
"""

import json
import sys

from finance_part2 import S, add

# the numbers part 2's answers rest on
assert 1200 / 480 == 2.5 < 3.0  # covenant met
assert 45 / 500 == 0.09 and 54 / 540 == 0.10  # margin improved
assert 140 < 165  # dividends not covered
assert (50000 - 5000) / 9 == 5000  # straight-line depreciation
assert round((1.02 / 1.05 - 1) * 100, 2) == -2.86  # "roughly 3%" a year
assert 96 < 118  # profit fell

# --- relation_extraction (6) --------------------------------------------------------------------------
T = "relation_extraction"
add(
    "acquirer-target",
    "Identify the acquirer, the target and the price in the deal described.",
    [
        (
            "Zennor Capital has agreed to buy Ashcombe Paper for $2.4 billion in cash, the companies said on Monday.",
            "acquirer: Zennor Capital; target: Ashcombe Paper; price: $2.4 billion in cash",
        )
    ],
    False,
    T,
)
add(
    "parent-subsidiary",
    "Extract the parent company and subsidiary pairs from the text as (parent, subsidiary).",
    [
        (
            "Ulverby Insurance owns Ulverby Life and Harbour Motor Cover, while Ulverby Life in turn owns a small pensions administrator, Pennant Admin.",
            "(Ulverby Insurance, Ulverby Life); (Ulverby Insurance, Harbour Motor Cover); (Ulverby Life, Pennant Admin)",
        )
    ],
    False,
    T,
)
add(
    "supplier-customer",
    "From the passage, list each supplier-customer relationship as supplier -> customer.",
    [
        (
            "Veltrix Semiconductors supplies chips to Tamsin Motors, and Tamsin Motors buys its batteries from Saltmarsh Mining's refining arm.",
            "Veltrix Semiconductors -> Tamsin Motors; Saltmarsh Mining (refining arm) -> Tamsin Motors",
        )
    ],
    False,
    T,
)
add(
    "metric-period-value",
    "Extract (company, metric, period, value) tuples from the sentence.",
    [
        (
            "Lanthorn Media's advertising revenue was $88 million in the second quarter, while Glenmoor Telecom's subscriber count reached 4.2 million at the end of June.",
            "(Lanthorn Media, advertising revenue, second quarter, $88 million); (Glenmoor Telecom, subscribers, end of June, 4.2 million)",
        )
    ],
    False,
    T,
)
add(
    "lender-borrower",
    "Who lent money to whom in the passage, and how much?",
    [
        (
            "Northmere Bank and two other lenders provided a $600 million loan to Wexcombe Airlines to finance six new aircraft.",
            "Lenders: Northmere Bank and two other lenders; borrower: Wexcombe Airlines; amount: $600 million, to finance six new aircraft",
        )
    ],
    False,
    T,
)
add(
    "executive-company-role",
    "Extract (person, role, company) triples from the text.",
    [
        (
            "Priya Natarajan, chief executive of Quillon Software, joined the board of Fernhollow Brewing as a non-executive director.",
            "(Priya Natarajan, chief executive, Quillon Software); (Priya Natarajan, non-executive director, Fernhollow Brewing)",
        )
    ],
    False,
    T,
)

# --- risk_identification (6) --------------------------------------------------------------------------
T = "risk_identification"
add(
    "risks-from-filing-paragraph",
    "List the business risks described in the paragraph.",
    [
        (
            "More than half of our revenue comes from three customers. Our products are made in a single plant, and we buy a key resin from one supplier. Most of our sales are in euros, while our debt is in US dollars.",
            "- Customer concentration: over half of revenue from three customers.\n- Operational risk: production depends on a single plant.\n- Supplier concentration: a key resin comes from one supplier.\n- Currency risk: euro revenue against US dollar debt.",
        )
    ],
    False,
    T,
)
add(
    "main-risk-of-bond",
    "What is the main risk for the holder of this bond?",
    [
        (
            "A 30-year fixed-rate government bond bought when yields are at 2%.",
            "Interest rate risk: if market yields rise, the price of a long fixed-rate bond falls sharply; inflation can also erode its fixed payments.",
        )
    ],
    False,
    T,
)
add(
    "red-flags-in-results",
    "Identify possible warning signs for investors in these results.",
    [
        (
            "Revenue grew 25%, but accounts receivable grew 70% and cash from operations turned negative. The company also changed auditors during the year.",
            "- Receivables growing much faster than revenue, which may mean customers are slow to pay or sales are recognised aggressively.\n- Negative operating cash flow despite higher revenue.\n- A change of auditors, which deserves an explanation.",
        )
    ],
    False,
    T,
)
add(
    "classify-risk-type",
    "Classify the risk as market risk, credit risk, liquidity risk, or operational risk.",
    [
        ("A borrower may fail to repay its loan to the bank.", "credit risk"),
        ("A software failure stops the bank's payment system for a day.", "operational risk"),
    ],
    True,
    T,
)
add(
    "risk-of-concentrated-portfolio",
    "Explain the risk in this investor's portfolio and suggest one way to reduce it.",
    [
        (
            "An employee holds 80% of her savings in shares of the company she works for.",
            "Concentration risk: her savings and her salary both depend on one company, so a single setback could hurt her income and her savings at once. She could reduce it by gradually diversifying into a broad index fund.",
        )
    ],
    False,
    T,
)
add(
    "risks-of-variable-rate-mortgage",
    "Name two risks a borrower faces with a variable-rate mortgage.",
    [
        (
            "",
            "1. Payment risk: monthly payments rise when interest rates go up.\n2. Affordability and refinancing risk: higher rates can make the loan hard to afford or to refinance if income falls or house prices drop.",
        )
    ],
    False,
    T,
)

# --- comparison (6) --------------------------------------------------------------------------------------
T = "comparison"
a_m, b_m = 36 / 400 * 100, 45 / 600 * 100
assert a_m == 9.0 and b_m == 7.5
add(
    "compare-operating-margins",
    "Which company has the higher operating margin? Show both margins.",
    [
        (
            "Company A: revenue $400 million, operating profit $36 million. Company B: revenue $600 million, operating profit $45 million.",
            "Company A: 36 / 400 = 9.0%. Company B: 45 / 600 = 7.5%. Company A has the higher operating margin, although Company B earns more profit in dollars.",
        )
    ],
    False,
    T,
)
assert 2.0 / 40 * 100 == 5.0 and 1.5 / 25 * 100 == 6.0
add(
    "compare-dividend-yields",
    "Compare the dividend yields of the two stocks and say which pays more income per dollar invested.",
    [
        (
            "Stock X: price $40, annual dividend $2.00. Stock Y: price $25, annual dividend $1.50.",
            "Stock X yields 2.00 / 40 = 5.0%; Stock Y yields 1.50 / 25 = 6.0%. Stock Y pays more income per dollar invested.",
        )
    ],
    False,
    T,
)
add(
    "compare-stocks-bonds",
    "Compare stocks and bonds in terms of risk and return.",
    [
        (
            "",
            "Stocks are ownership shares in a company: their returns come from dividends and price changes, are not guaranteed and are more volatile, but over long periods they have usually earned more. Bonds are loans to a government or company that pay fixed interest and return the principal at maturity, so they are usually less volatile, but their expected returns are lower and they can lose value when interest rates rise or the issuer defaults.",
        )
    ],
    False,
    T,
)
add(
    "compare-leverage",
    "Which company is more leveraged? Use the debt-to-equity ratio.",
    [
        (
            "Pellham Textiles: debt $300 million, equity $600 million. Marrowby Chemicals: debt $900 million, equity $1,200 million.",
            "Pellham Textiles: 300 / 600 = 0.50. Marrowby Chemicals: 900 / 1,200 = 0.75. Marrowby Chemicals is more leveraged.",
        )
    ],
    False,
    T,
)
assert 300 / 600 == 0.5 and 900 / 1200 == 0.75
add(
    "compare-fund-fees",
    "Two funds returned 7% a year before fees. Compare what each leaves an investor after one year on $10,000.",
    [
        (
            "Fund A charges 0.10% a year; Fund B charges 1.50% a year. Apply each fee to the return for simplicity.",
            "Fund A: 7% - 0.10% = 6.90%, or $690 on $10,000. Fund B: 7% - 1.50% = 5.50%, or $550. Fund A leaves the investor $140 more after one year.",
        )
    ],
    False,
    T,
)
assert round(10000 * 0.069) == 690 and round(10000 * 0.055) == 550 and 690 - 550 == 140
add(
    "compare-growth-vs-value",
    "Explain the difference between a growth stock and a value stock.",
    [
        (
            "",
            "A growth stock belongs to a company expected to increase its revenue and earnings faster than the market; it often pays little or no dividend and trades at a high price relative to current earnings. A value stock trades at a low price relative to its earnings, book value or dividends, often because the company is mature or out of favour, and investors buy it expecting the price to rise toward its fair value.",
        )
    ],
    False,
    T,
)

# --- multiple_choice_qa (6) ----------------------------------------------------------------------------
T = "multiple_choice_qa"
add(
    "mcq-balance-sheet-identity",
    "Answer this accounting multiple-choice question with the letter of the correct option.",
    [
        (
            "Which equation is the basic accounting identity?\nA. Assets = Liabilities + Equity\nB. Assets = Revenue - Expenses\nC. Equity = Assets + Liabilities\nD. Liabilities = Assets + Equity",
            "A",
        )
    ],
    True,
    T,
)
add(
    "mcq-rate-rise-bond-price",
    "Choose the correct answer (A, B, C, or D).",
    [
        (
            "If market interest rates rise, what usually happens to the price of an existing fixed-rate bond?\nA. It rises\nB. It falls\nC. It stays the same\nD. It becomes zero",
            "B",
        )
    ],
    True,
    T,
)
add(
    "mcq-liquid-asset",
    "Pick the most liquid asset. Reply with the letter only.",
    [
        (
            "A. A factory building\nB. Cash in a current account\nC. A patent\nD. Inventory of finished goods",
            "B",
        )
    ],
    True,
    T,
)
assert round(100 * 1.10 * 0.90, 6) == 99.0  # 1% lower
add(
    "mcq-percent-up-down",
    "Select the correct option and give its letter.",
    [
        (
            "A share price rises 10% and then falls 10%. Compared with the starting price, the share is now:\nA. 1% lower\nB. unchanged\nC. 1% higher\nD. 10% lower",
            "A",
        )
    ],
    True,
    T,
)
add(
    "mcq-dividend-effect",
    "Answer with the letter of the best option.",
    [
        (
            "Once a cash dividend has been declared and paid, which items on the balance sheet are lower?\nA. Accounts payable\nB. Inventory\nC. Cash and retained earnings\nD. Long-term debt",
            "C",
        )
    ],
    True,
    T,
)
add(
    "mcq-which-ratio-liquidity",
    "Which ratio measures a company's short-term liquidity? Answer with a letter.",
    [("A. Price-to-earnings ratio\nB. Current ratio\nC. Dividend payout ratio\nD. Return on equity", "B")],
    True,
    T,
)

# --- factoid_qa (5) --------------------------------------------------------------------------------------
T = "factoid_qa"
add(
    "passage-factoid-net-profit",
    "Answer the question using the passage.",
    [
        (
            "Question: What was Harrowgate Foods' net profit in 2023?\nPassage: Harrowgate Foods reported 2023 revenue of $3.2 billion and net profit of $141 million, compared with $152 million in 2022.",
            "$141 million",
        )
    ],
    False,
    T,
)
add(
    "passage-factoid-headcount",
    "How many employees does the company have, according to the text?",
    [
        (
            "Founded in 1998, Bluefin Logistics operates 62 warehouses in nine countries and employs about 7,400 people.",
            "About 7,400",
        )
    ],
    False,
    T,
)
add(
    "factoid-who-sets-rates",
    "Answer the finance question in a few words.",
    [
        ("Which institution usually sets a country's short-term policy interest rate?", "The central bank"),
        (
            "What is the name for the first sale of a company's shares to the public?",
            "An initial public offering (IPO)",
        ),
    ],
    False,
    T,
)
add(
    "passage-factoid-largest-segment",
    "Which business segment had the highest revenue?",
    [
        (
            "Saltmarsh Mining segment revenue: copper $1.9 billion; zinc $0.7 billion; services $0.3 billion.",
            "Copper, with $1.9 billion",
        )
    ],
    False,
    T,
)
add(
    "passage-factoid-maturity",
    "When does the bond mature, and what coupon does it pay?",
    [
        (
            "Redwater Utilities issued $500 million of 4.25% senior notes due 15 March 2034.",
            "It matures on 15 March 2034 and pays a 4.25% coupon.",
        )
    ],
    False,
    T,
)

out = sys.argv[1]
with open(out, "w", encoding="utf-8") as f:
    for i, (name, instruction, instances, cls, ttype) in enumerate(S, start=1):
        seed = {
            "id": f"fin_{i:03d}",
            "name": name,
            "instruction": instruction,
            "instances": [{"input": a, "output": b} for a, b in instances],
            "is_classification": cls,
            "task_type": ttype,
        }
        f.write(json.dumps(seed, ensure_ascii=False) + "\n")
print(len(S))
