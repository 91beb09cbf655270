"""Words, names and field definitions the simulated world draws its recordings from.

The lists mix scripts, emoji, control characters and very long sentences on purpose, so
consumers meet the text a real organization produces. Changing a list changes the world.
"""

from __future__ import annotations

FIRST_NAMES = ["Ana", "Bjørn", "Chloé", "Dmitri", "Emeka", "Fatima", "Giulia", "Hiro", "Isabel", "Jamal",
               "Kai", "Léa", "Mateo", "Nadia", "Owen", "Priya", "Quinn", "Rosa", "Sven", "Tomás", "Uma",
               "Wei", "Xiomara", "Yusuf", "Zoë", "José", "Renée", "Łukasz", "Søren", "François"]
LAST_NAMES = ["Andersen", "Brown", "Castillo", "Dubois", "Eriksen", "García", "Hernández", "Ito", "Jones",
              "Kowalski", "López", "Müller", "Nguyen", "O'Brien", "Patel", "Rossi", "Smith", "Tanaka",
              "Williams", "Zhang", "Núñez", "Øberg"]
STREETS = ["Main St", "Oak Ave", "Maple Dr", "Cedar Ln", "Elm St", "Pine Rd", "Sunset Blvd", "Lakeview Ct"]
TITLE_TEMPLATES = [
    "Roof inspection – {n} {street}",
    "Consultation with {name}",
    "In-home estimate: {name}",
    "Follow-up visit {name} 🏠",
    "Solar quote — {name}",
    "Window replacement @ {n} {street}",
    "Kitchen remodel walkthrough ({name})",
    "HVAC service call #{n}",
    "商談: {name}",
    "زيارة العميل {name}",
    "Appointment {n}",
]
SECTION_NAMES = ["Overview", "Next steps", "Objections", "Pricing discussed", "Customer concerns",
                  "Action items", "Decision makers", "Résumé", "顧客の懸念", "ملخص المكالمة", "Follow-up 📅"]
SENTENCES = [
    "The customer asked about financing options and monthly payments.",
    "Rep walked through the three package tiers and the warranty terms.",
    "Homeowner is comparing our quote with two competitors.",
    "👍🏼 Customer loved the demo 🎉 and wants to move forward after talking to their spouse.",
    "お客様は価格について質問し、来週までに決定すると述べました。",
    "客户对安装时间表表示担忧，希望在月底前完成。",
    "Le client a déjà signé l'accord préliminaire — très satisfait, naïve café talk included.",
    "العميل مهتم بالعرض ويرغب في معرفة المزيد عن الضمان.",
    "לקוח ביקש הצעת מחיר מעודכנת עד יום חמישי.",
    "Der Kunde möchte die Größe der Fenster überprüfen lassen; Straße ist schwer zugänglich.",
    "Objection: \"too expensive\" — countered with the 0% APR promo.",
    "Next visit scheduled; bring samples of shingles (charcoal, slate, and weathered wood).",
    "Notes contain a tab\tand a backslash \\ and a newline\nbetween lines.",
    "Zalgo-ish combining marks: é (e + ́), ñ (n + ̃).",
    "Price quoted: $14,950 before incentives; customer expects <$12k.",
    "Customer mentioned a prior bad experience with another contractor 😕.",
]

# Extraction definitions: name -> (kind, default mappings)
EXTRACTIONS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("customer_name", "str", [("Contact", "Name"), ("Lead", "Name")]),
    ("budget", "int", [("Opportunity", "Amount")]),
    ("close_probability", "float", [("Opportunity", "Probability")]),
    ("decision_maker_present", "bool", [("Engagement", "Decision_Maker_Present__c")]),
    ("competitor_mentioned", "str_or_null", [("Opportunity", "Competitor__c")]),
    ("products_discussed", "str_list", [("Opportunity", "Products__c"), ("Account", "Interests__c")]),
    ("follow_up_date", "date", [("Engagement", "Follow_Up_Date__c")]),
    ("signals", "mixed_list", [("Engagement", "Signals__c")]),
    ("num_windows", "int", [("Opportunity", "Quantity__c")]),
    ("lead_source", "str", [("Lead", "LeadSource")]),
    ("call_notes", "unicode", [("Engagement", "Description")]),
    ("roof_age_years", "float", [("Account", "Roof_Age__c")]),
    ("financing_requested", "bool", [("Opportunity", "Financing__c"), ("Lead", "Financing__c")]),
    ("household_size", "null", [("Contact", "Household_Size__c")]),
]
ALL_MAPPINGS = sorted({m for _, _, ms in EXTRACTIONS for m in ms})
PRODUCTS = ["Solar panels", "Battery", "Roof", "Gutters", "Windows", "Siding", "HVAC", "Heat pump", "Insulation", "EV charger"]
COMPETITORS = ["Acme Roofing", "SunPower", "Tesla Energy", "Renewal by Andersen", "Local contractor"]
CONNECTIONS = ["ic_sim_salesforce", "ic_sim_hubspot"]
