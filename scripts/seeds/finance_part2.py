# ruff: noqa: E501  (seed texts are data: one string per line)
"""Finance seeds, part 2: extraction, classification, QA, explanations, summaries, risks, comparisons."""

from finance_part1 import S, add  # noqa: F401  (S: re-exported to finance.py)

# --- entity_extraction (7) --------------------------------------------------------------------------
T = "entity_extraction"
add(
    "extract-company-names",
    "List the company names mentioned in the passage.",
    [
        (
            "Saltmarsh Mining agreed to sell its copper unit to Redwater Utilities, while Zennor Capital advised on the deal.",
            "Saltmarsh Mining; Redwater Utilities; Zennor Capital",
        )
    ],
    False,
    T,
)
add(
    "extract-tickers",
    "Extract every stock ticker symbol from the text.",
    [
        (
            "Shares of VLTX rose 4% while KSTD slipped 1% after the two companies updated their outlooks; the index fund ZNRX was flat.",
            "VLTX, KSTD, ZNRX",
        )
    ],
    False,
    T,
)
add(
    "extract-monetary-amounts",
    "Identify all monetary amounts in the sentence, with their currency.",
    [
        (
            "Ulverby Insurance paid 1.2 billion pounds in claims last year and set aside a further 300 million pounds for storm damage, while its US unit earned $85 million.",
            "1.2 billion pounds; 300 million pounds; $85 million (US dollars)",
        )
    ],
    False,
    T,
)
add(
    "extract-dates-and-events",
    "Extract each date and the corporate event that happens on it.",
    [
        (
            "Wexcombe Airlines will report first-quarter results on 24 April, pay its final dividend on 2 June and hold its investor day on 18 September.",
            "24 April: first-quarter results; 2 June: final dividend payment; 18 September: investor day",
        )
    ],
    False,
    T,
)
add(
    "extract-typed-entities",
    "Tag the entities in the sentence as COMPANY, PERSON, MONEY, or PERCENT.",
    [
        (
            "Chief executive Maria Okafor said Yarrowfield Hotels expects revenue per room to rise 7% after spending $40 million on renovations.",
            "Maria Okafor: PERSON; Yarrowfield Hotels: COMPANY; 7%: PERCENT; $40 million: MONEY",
        )
    ],
    False,
    T,
)
add(
    "extract-financial-metrics",
    "List the financial metrics reported in the passage together with their values.",
    [
        (
            "Fernhollow Brewing reported net sales of $512 million, an operating margin of 14.2% and net debt of $230 million at year end.",
            "net sales: $512 million; operating margin: 14.2%; net debt: $230 million",
        )
    ],
    False,
    T,
)
add(
    "extract-executive-roles",
    "Name each person in the announcement and their role.",
    [
        (
            "Ashcombe Paper appointed Daniel Reyes as chief financial officer, effective 1 March; he succeeds Helen Marsh, who becomes chair of the board.",
            "Daniel Reyes: chief financial officer; Helen Marsh: chair of the board (former chief financial officer)",
        )
    ],
    False,
    T,
)

# --- document_classification (7) --------------------------------------------------------------------
T = "document_classification"
add(
    "annual-report-section",
    "Which section of an annual report does this paragraph most likely come from? Choose from: risk factors, management discussion, financial statements notes, auditor's report.",
    [
        (
            "In our opinion, the consolidated financial statements present fairly, in all material respects, the financial position of the Group as at 31 December.",
            "auditor's report",
        ),
        (
            "A prolonged outage of our main data centre could interrupt customer orders and damage our reputation.",
            "risk factors",
        ),
    ],
    True,
    T,
)
add(
    "statement-type-of-line-item",
    "Classify the line item by the financial statement it belongs to: income statement, balance sheet, or cash flow statement.",
    [
        ("Accounts receivable", "balance sheet"),
        ("Cost of goods sold", "income statement"),
        ("Purchases of property, plant and equipment", "cash flow statement"),
    ],
    True,
    T,
)
add(
    "cash-flow-activity",
    "In which cash flow category does the transaction belong: operating, investing, or financing?",
    [
        ("The company repaid $50 million of its bank loan.", "financing"),
        ("The company bought a new warehouse for $20 million.", "investing"),
    ],
    True,
    T,
)
add(
    "news-topic-category",
    "Assign the financial news item to one topic: earnings, mergers and acquisitions, monetary policy, or labour market.",
    [
        (
            "The central bank left its benchmark rate unchanged and signalled one cut later in the year.",
            "monetary policy",
        )
    ],
    True,
    T,
)
add(
    "asset-class",
    "Classify each instrument by asset class: equity, fixed income, commodity, or cash equivalent.",
    [
        ("A three-month government treasury bill", "cash equivalent"),
        ("A ten-year corporate bond", "fixed income"),
        ("Gold futures", "commodity"),
    ],
    True,
    T,
)
add(
    "expense-capex-or-opex",
    "Is the expenditure a capital expenditure or an operating expense?",
    [
        ("Buying a delivery truck that will be used for eight years.", "capital expenditure"),
        ("Paying this month's office electricity bill.", "operating expense"),
    ],
    True,
    T,
)
add(
    "transaction-fraud-flag",
    "Classify the customer message as a complaint, a service request, or a fraud report.",
    [("I see two card payments in another country that I never made, please block my card.", "fraud report")],
    True,
    T,
)

# --- yes_no_qa (7) ------------------------------------------------------------------------------------
T = "yes_no_qa"
add(
    "passage-yes-no-profit",
    "Read the passage and answer the question with yes or no.",
    [
        (
            "Question: Did Marrowby Chemicals increase its net profit in 2023?\nPassage: Marrowby Chemicals reported 2023 revenue of $2.1 billion, up 3%. Higher energy costs reduced net profit to $96 million from $118 million in 2022.",
            "no",
        )
    ],
    True,
    T,
)
add(
    "passage-yes-no-guidance",
    "Based on the passage, answer yes or no.",
    [
        (
            "Question: Did the company raise its full-year guidance?\nPassage: After a strong third quarter, Quillon Software now expects annual revenue of $610-620 million, above its earlier range of $580-600 million.",
            "yes",
        )
    ],
    True,
    T,
)
add(
    "passage-yes-no-covenant",
    "Does the company meet its loan covenant? Answer yes or no using the passage.",
    [
        (
            "Passage: The loan agreement requires net debt to stay below 3.0 times EBITDA. At year end Tamsin Motors had net debt of $1,200 million and EBITDA of $480 million.",
            "yes",
        )
    ],
    True,
    T,
)
add(
    "passage-yes-no-dividend-cover",
    "Answer the question about the passage with yes or no.",
    [
        (
            "Question: Were the dividends paid fully covered by free cash flow?\nPassage: Glenmoor Telecom generated free cash flow of $140 million and paid dividends of $165 million, funding the gap with new borrowing.",
            "no",
        )
    ],
    True,
    T,
)
add(
    "passage-yes-no-acquisition-complete",
    "Has the acquisition described in the passage been completed? Reply yes or no.",
    [
        (
            "Passage: Bluefin Logistics has signed an agreement to acquire a regional parcel carrier. The deal still requires approval from competition authorities and is expected to close next year.",
            "no",
        )
    ],
    True,
    T,
)
add(
    "yes-no-general-knowledge",
    "Answer yes or no.",
    [
        ("Do bond prices usually fall when market interest rates rise?", "yes"),
        ("Is a company's market capitalisation equal to its total assets?", "no"),
    ],
    True,
    T,
)
add(
    "passage-yes-no-margin-improved",
    "Using the figures in the passage, did the operating margin improve? Answer yes or no.",
    [
        (
            "Passage: Operating profit was $45 million on revenue of $500 million last year, and $54 million on revenue of $540 million this year.",
            "yes",
        )
    ],
    True,
    T,
)

# --- concept_explanation (9) --------------------------------------------------------------------------
T = "concept_explanation"
add(
    "define-ebitda",
    "Explain what EBITDA is and why analysts use it.",
    [
        (
            "",
            "EBITDA is earnings before interest, taxes, depreciation and amortization. It approximates the profit a business generates from its operations before financing costs, taxes and non-cash charges for the wear of assets, so analysts use it to compare operating performance between companies with different debt levels, tax situations and asset bases. It is not a measure of cash flow, because it ignores capital spending and changes in working capital.",
        )
    ],
    False,
    T,
)
add(
    "define-working-capital",
    "Define working capital in one or two sentences.",
    [
        (
            "",
            "Working capital is current assets minus current liabilities. It measures the short-term resources a company has available to run its day-to-day operations.",
        )
    ],
    False,
    T,
)
add(
    "explain-bond-duration",
    "Explain the concept of a bond's duration to a new investor.",
    [
        (
            "",
            "Duration measures how sensitive a bond's price is to changes in interest rates, expressed in years. A bond with a duration of 5 years loses roughly 5% of its price if interest rates rise by one percentage point, and gains roughly 5% if they fall by one point. Longer maturities and lower coupons mean a longer duration and more interest rate risk.",
        )
    ],
    False,
    T,
)
add(
    "explain-diversification",
    "Why does diversification reduce risk in a portfolio?",
    [
        (
            "",
            "Different investments do not all move in the same direction at the same time. When a portfolio holds many assets whose returns are not perfectly correlated, losses in some are partly offset by gains or smaller losses in others, so the portfolio's overall volatility is lower than that of its typical holding. Diversification reduces company-specific risk but cannot remove market-wide risk.",
        )
    ],
    False,
    T,
)
add(
    "define-liquidity",
    "What does liquidity mean in finance? Give a short definition.",
    [
        (
            "",
            "Liquidity is how quickly and cheaply an asset can be turned into cash without moving its price much. For a company, it also means its ability to pay its short-term obligations as they fall due.",
        )
    ],
    False,
    T,
)
add(
    "explain-inflation-purchasing-power",
    "Explain how inflation affects the purchasing power of savings.",
    [
        (
            "",
            "Inflation is a general rise in prices over time. If savings earn less interest than the rate of inflation, the same amount of money buys fewer goods each year, so the real value of the savings falls. For example, with 5% inflation and 2% interest, purchasing power falls by roughly 3% a year.",
        )
    ],
    False,
    T,
)
add(
    "explain-depreciation",
    "Describe what depreciation is and how straight-line depreciation works.",
    [
        (
            "",
            "Depreciation spreads the cost of a long-lived asset over the years it is used, matching the expense to the periods that benefit from it. Under the straight-line method the same amount is charged each year: cost minus expected residual value, divided by the useful life. A $50,000 machine with a $5,000 residual value and a 9-year life is depreciated by $5,000 a year.",
        )
    ],
    False,
    T,
)
add(
    "explain-accrual-vs-cash",
    "What is the difference between accrual accounting and cash accounting?",
    [
        (
            "",
            "Under accrual accounting, revenue is recorded when it is earned and expenses when they are incurred, regardless of when cash changes hands. Under cash accounting, revenue and expenses are recorded only when cash is received or paid. Accrual accounting gives a better picture of performance in a period and is required for most companies' financial statements.",
        )
    ],
    False,
    T,
)
add(
    "explain-yield-curve-inversion",
    "What is an inverted yield curve and why do investors watch it?",
    [
        (
            "",
            "A yield curve plots the yields of bonds of the same credit quality against their maturities. Normally longer bonds yield more than shorter ones. The curve is inverted when short-term yields are higher than long-term yields. Investors watch it because an inversion often reflects expectations that interest rates will fall, and in the past it has frequently come before economic recessions.",
        )
    ],
    False,
    T,
)

# --- summarization (6) ----------------------------------------------------------------------------------
T = "summarization"
add(
    "summarize-earnings-release",
    "Summarize the earnings release in one sentence.",
    [
        (
            "Kestrel Dynamics reported third-quarter revenue of $248 million, up 11% on the same quarter last year, as demand for its industrial sensors recovered. Operating profit rose to $31 million from $24 million, helped by lower freight costs. The company kept its full-year outlook unchanged and said orders in October were in line with its plans.",
            "Kestrel Dynamics' third-quarter revenue rose 11% to $248 million and operating profit increased to $31 million, with the full-year outlook unchanged.",
        )
    ],
    False,
    T,
)
add(
    "summarize-risk-paragraph-plain",
    "Rewrite the paragraph as a short plain-language summary for retail investors.",
    [
        (
            "The Group's floating-rate borrowings expose it to movements in benchmark interest rates. A 100 basis point increase in rates would reduce annual profit before tax by approximately $12 million, based on borrowings outstanding at the balance sheet date.",
            "Much of the company's debt has interest rates that change with the market. If rates go up by one percentage point, its yearly profit before tax would fall by about $12 million.",
        )
    ],
    False,
    T,
)
add(
    "summarize-key-points-bullets",
    "List the three key points of the announcement as bullet points.",
    [
        (
            "Corlane Retail will close 40 of its 310 stores over the next year, mainly in city centres with falling footfall. About 900 jobs will be affected, and the company expects one-off costs of $35 million. The savings, estimated at $20 million a year, will be invested in online delivery.",
            "- 40 of 310 stores will close within a year, affecting about 900 jobs.\n- One-off costs are expected to be $35 million.\n- Annual savings of about $20 million will fund online delivery.",
        )
    ],
    False,
    T,
)
add(
    "headline-from-article",
    "Write a short news headline for the article.",
    [
        (
            "Redwater Utilities said on Tuesday that it will invest $1.5 billion over five years to replace ageing water pipes, funded partly by a regulated price increase of 4% a year for customers.",
            "Redwater Utilities plans $1.5 billion pipe upgrade, lifting bills 4% a year",
        )
    ],
    False,
    T,
)
add(
    "summarize-analyst-note",
    "Summarize the analyst's view in two sentences.",
    [
        (
            "We upgrade Yarrowfield Hotels to buy. Occupancy has returned to pre-pandemic levels and room rates are rising faster than costs. The balance sheet is stronger after last year's asset sales, and we see room for a higher dividend. The main risk is a slowdown in business travel.",
            "The analyst upgraded Yarrowfield Hotels to buy because occupancy has recovered, room rates are rising faster than costs and the balance sheet is stronger. A slowdown in business travel is the main risk.",
        )
    ],
    False,
    T,
)
add(
    "summarize-central-bank-statement",
    "Give a one-sentence summary of the central bank statement.",
    [
        (
            "The committee voted to raise the policy rate by 0.25 percentage points to 4.5%. Inflation remains well above the 2% target, and wage growth has been stronger than expected. Members judged that further increases may be needed if price pressures persist.",
            "The central bank raised its policy rate by a quarter point to 4.5% because inflation is still well above target, and it may raise rates again.",
        )
    ],
    False,
    T,
)
