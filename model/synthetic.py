"""A seeded generator of classifieds-style listings, with a drift knob.

It is the embedded default for the demo and for every test that must run on any machine: the same
seed gives the same rows. ``drift`` (0 to 1) moves four things at once, as real marketplaces drift:
the category mix shifts, new brands and models appear, prices inflate, and sellers phrase titles in
new ways. Some descriptions carry contact details (phone numbers, e-mails, links), as real ones do,
so that masking personal data downstream is exercised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from rich.progress import track


@dataclass(frozen=True)
class Category:
    path: str
    nouns: tuple[str, ...]  # words a seller uses for the thing ("phone", "smartphone")
    items: tuple[str, ...]  # brands and models on sale before drift
    new_items: tuple[str, ...]  # brands and models that appear with drift
    details: tuple[str, ...]  # attributes that go into titles and descriptions
    median_price: float
    price_sigma: float = 0.5
    weight: float = 1.0
    drift_trend: float = 0.0  # > 0 grows with drift, < 0 shrinks


CATALOGUE: tuple[Category, ...] = (
    Category(
        "Electronics > Mobile phones",
        ("phone", "smartphone", "mobile"),
        (
            "iPhone 13",
            "iPhone 12 mini",
            "iPhone 14 Pro",
            "Samsung Galaxy S21",
            "Samsung Galaxy A52",
            "Google Pixel 6",
            "Xiaomi Redmi Note 11",
            "OnePlus 9",
            "Motorola Moto G60",
            "Huawei P30",
        ),
        ("iPhone 17 Air", "Nothing Phone 3", "Fairphone 5", "Galaxy S26 Ultra", "Pixel 10 Pro"),
        ("128GB", "64GB", "256GB", "unlocked", "dual sim", "5G", "with charger", "cracked screen"),
        300,
        0.6,
        1.6,
        0.8,
    ),
    Category(
        "Electronics > Laptops",
        ("laptop", "notebook", "ultrabook"),
        (
            "MacBook Air M1",
            "MacBook Pro 2019",
            "Dell XPS 13",
            "Lenovo ThinkPad T480",
            "HP Pavilion 15",
            "Asus ZenBook 14",
            "Acer Aspire 5",
            "Microsoft Surface Laptop 3",
        ),
        ("MacBook Air M4", "Framework 13", "Snapdragon X Elite Copilot+ PC", "Lenovo Yoga Slim 7x"),
        ("16GB RAM", "8GB RAM", "512GB SSD", "i7", "i5", "Ryzen 5", "14 inch", "backlit keyboard"),
        550,
        0.5,
        1.2,
        0.5,
    ),
    Category(
        "Electronics > Tablets",
        ("tablet", "pad"),
        ("iPad Air", "iPad 9th gen", "Samsung Galaxy Tab S7", "Amazon Fire HD 10", "Lenovo Tab M10"),
        ("iPad Pro M4", "OnePlus Pad 2", "Galaxy Tab S10"),
        ("64GB", "wifi", "cellular", "with pencil", "with keyboard case", "10 inch"),
        220,
        0.5,
        0.7,
    ),
    Category(
        "Electronics > TVs",
        ("TV", "television", "smart TV"),
        ("Samsung 55 inch QLED", "LG OLED 48", "Sony Bravia 43", "Philips Ambilight 50", "TCL 4K 65"),
        ("LG C5 OLED", "Hisense Mini-LED 75", "Samsung Neo QLED 8K"),
        ("4K", "HDR", "wall mount", "with remote", "Netflix", "Full HD"),
        350,
        0.6,
        0.8,
    ),
    Category(
        "Electronics > Headphones",
        ("headphones", "earbuds", "headset"),
        ("Sony WH-1000XM4", "AirPods Pro", "Bose QC35", "Sennheiser HD 599", "JBL Tune 510BT"),
        ("AirPods Pro 3", "Sony WH-1000XM6", "Nothing Ear (3)"),
        ("noise cancelling", "wireless", "bluetooth", "with case", "over-ear"),
        90,
        0.6,
        0.8,
        0.5,
    ),
    Category(
        "Electronics > Cameras",
        ("camera", "DSLR", "mirrorless camera"),
        ("Canon EOS 250D", "Nikon D3500", "Sony A6000", "Fujifilm X-T30", "GoPro Hero 8"),
        ("Fujifilm X100VI", "Sony ZV-E10 II", "DJI Osmo Pocket 3"),
        ("18-55mm lens", "body only", "low shutter count", "with bag", "24MP"),
        420,
        0.6,
        0.6,
    ),
    Category(
        "Electronics > Video games & consoles",
        ("console", "games console"),
        ("PS4 Slim", "PlayStation 5", "Xbox One S", "Nintendo Switch", "Xbox Series S"),
        ("Nintendo Switch 2", "PS5 Pro", "Steam Deck OLED"),
        ("two controllers", "1TB", "with games", "boxed", "digital edition"),
        260,
        0.5,
        1.0,
        0.4,
    ),
    Category(
        "Vehicles > Cars",
        ("car", "hatchback", "saloon", "estate"),
        (
            "VW Golf 1.6 TDI",
            "Ford Fiesta 1.2",
            "Toyota Corolla",
            "BMW 320d",
            "Audi A3 Sportback",
            "Renault Clio",
            "Skoda Octavia",
            "Vauxhall Astra",
        ),
        ("Tesla Model Y", "BYD Atto 3", "MG4 EV", "Kia EV6"),
        ("low mileage", "full service history", "MOT till June", "diesel", "automatic", "one owner"),
        7500,
        0.7,
        1.4,
        -0.5,
    ),
    Category(
        "Vehicles > Motorbikes & scooters",
        ("motorbike", "motorcycle", "scooter"),
        ("Honda CBR600", "Yamaha MT-07", "Vespa Primavera 125", "Kawasaki Z650", "Suzuki SV650"),
        ("Zero SR/F electric", "NIU NQi GTS", "Super Soco TC Max"),
        ("A2 compliant", "low miles", "new tyres", "125cc", "with helmet"),
        3500,
        0.7,
        0.8,
    ),
    Category(
        "Vehicles > Bicycles",
        ("bike", "bicycle", "cycle"),
        ("Trek Marlin 5", "Specialized Allez", "Giant Talon", "Brompton folding", "Carrera Vengeance"),
        ("VanMoof S5 e-bike", "Rad Power RadCity", "Cowboy 4 e-bike"),
        ("21 speed", "disc brakes", "medium frame", "mountain", "road", "hybrid"),
        280,
        0.7,
        1.2,
        0.6,
    ),
    Category(
        "Vehicles > Car parts & accessories",
        ("car part", "wheels", "tyres"),
        (
            "alloy wheels 17",
            "Michelin tyres 205/55 R16",
            "roof box Thule",
            "car seat covers",
            "dash cam Nextbase",
        ),
        ("Tesla wall charger", "type 2 EV charging cable", "Ohme home charger"),
        ("set of 4", "fits Golf", "universal", "brand new", "used once"),
        120,
        0.8,
        0.8,
        0.3,
    ),
    Category(
        "Property > Flats for rent",
        ("flat", "apartment", "studio"),
        ("2 bed flat", "1 bedroom apartment", "studio flat", "3 bed maisonette", "loft apartment"),
        ("co-living suite", "build-to-rent 1 bed", "micro-studio"),
        ("near station", "bills included", "furnished", "unfurnished", "balcony", "pets allowed"),
        1200,
        0.4,
        1.3,
        -0.3,
    ),
    Category(
        "Property > Houses for sale",
        ("house", "home", "property"),
        ("3 bed semi-detached house", "2 bed terraced house", "4 bed detached house", "bungalow"),
        ("eco-home with heat pump", "new build townhouse", "passivhaus"),
        ("large garden", "driveway", "freehold", "chain free", "garage"),
        285000,
        0.4,
        0.7,
        -0.5,
    ),
    Category(
        "Property > Rooms to share",
        ("room", "double room", "single room"),
        ("double room in shared house", "single room", "ensuite room", "room in flatshare"),
        ("pod room in co-living", "room in house share with gym"),
        ("bills included", "professional house", "near uni", "short let"),
        600,
        0.3,
        0.9,
    ),
    Category(
        "Home & Garden > Sofas",
        ("sofa", "couch", "settee"),
        ("IKEA Kivik 3 seater", "DFS corner sofa", "leather chesterfield", "sofa bed", "2 seater fabric"),
        ("modular cloud couch", "boucle curved sofa"),
        ("grey", "navy velvet", "brown leather", "pet free home", "must collect"),
        180,
        0.7,
        1.2,
    ),
    Category(
        "Home & Garden > Beds & mattresses",
        ("bed", "mattress", "bed frame"),
        (
            "king size bed frame",
            "double bed with mattress",
            "Emma memory foam mattress",
            "bunk bed",
            "ottoman storage bed",
        ),
        ("Simba hybrid pro mattress", "smart adjustable bed"),
        ("king size", "double", "single", "barely used", "clean"),
        150,
        0.7,
        1.0,
    ),
    Category(
        "Home & Garden > Tables & chairs",
        ("table", "chairs", "dining set"),
        ("oak dining table", "4 chairs set", "glass coffee table", "extendable table", "office chair"),
        ("ergonomic standing desk", "gaming chair Secretlab"),
        ("seats 6", "solid wood", "white", "folding", "good condition"),
        110,
        0.7,
        1.0,
    ),
    Category(
        "Home & Garden > Kitchen appliances",
        ("appliance", "machine", "fridge"),
        (
            "Bosch washing machine",
            "Samsung fridge freezer",
            "Nespresso coffee machine",
            "KitchenAid mixer",
            "Dyson V8 vacuum",
        ),
        ("Ninja air fryer dual zone", "Thermomix TM7", "Sage barista espresso"),
        ("A+++", "integrated", "freestanding", "working perfectly", "boxed"),
        140,
        0.8,
        1.0,
        0.4,
    ),
    Category(
        "Home & Garden > Garden & tools",
        ("tools", "lawn mower", "garden furniture"),
        ("Bosch drill set", "petrol lawn mower", "rattan garden set", "DeWalt impact driver", "garden shed"),
        ("robot lawnmower Worx", "cordless leaf blower Ego"),
        ("18V", "with batteries", "self propelled", "weatherproof", "hardly used"),
        90,
        0.8,
        0.9,
    ),
    Category(
        "Kids > Prams & pushchairs",
        ("pram", "pushchair", "buggy", "stroller"),
        ("Bugaboo Fox", "iCandy Peach", "Silver Cross Pioneer", "Joie Versatrax", "Babyzen Yoyo"),
        ("Cybex Priam 4", "Joolz Aer+"),
        ("travel system", "with carrycot", "rain cover", "from birth", "folds flat"),
        250,
        0.6,
        0.8,
    ),
    Category(
        "Kids > Toys",
        ("toys", "toy", "playset"),
        (
            "Lego Star Wars set",
            "Playmobil castle",
            "wooden train set",
            "Barbie dreamhouse",
            "Hot Wheels track",
        ),
        ("Lego Technic Bugatti", "Tonies box starter set", "Squishmallows bundle"),
        ("complete", "age 3+", "boxed", "bundle", "like new"),
        30,
        0.8,
        1.0,
        0.5,
    ),
    Category(
        "Kids > Kids clothing",
        ("clothes", "outfit", "bundle"),
        (
            "baby clothes bundle 0-3 months",
            "girls dresses age 5",
            "boys school uniform",
            "kids winter coat",
            "baby sleepsuits",
        ),
        ("Frugi organic bundle", "Mini Boden kids rain suit"),
        ("age 2-3", "Next", "H&M", "excellent condition", "smoke free home"),
        15,
        0.7,
        0.9,
    ),
    Category(
        "Fashion > Shoes",
        ("shoes", "trainers", "boots", "sneakers"),
        (
            "Nike Air Max 90",
            "Adidas Stan Smith",
            "Dr Martens 1460",
            "Converse Chuck Taylor",
            "Timberland boots",
        ),
        ("On Cloudmonster", "Hoka Clifton 10", "Salomon XT-6"),
        ("size 9", "size 6", "worn once", "boxed", "black"),
        45,
        0.6,
        1.0,
        0.3,
    ),
    Category(
        "Fashion > Watches",
        ("watch", "smartwatch"),
        (
            "Casio G-Shock",
            "Seiko 5 automatic",
            "Apple Watch Series 6",
            "Garmin Forerunner 245",
            "Fossil chronograph",
        ),
        ("Apple Watch Ultra 3", "Garmin Fenix 8", "Pixel Watch 4"),
        ("stainless steel", "with box", "GPS", "44mm", "new strap"),
        140,
        0.8,
        0.7,
        0.4,
    ),
    Category(
        "Fashion > Handbags",
        ("handbag", "bag", "tote"),
        ("Michael Kors tote", "Radley crossbody bag", "Mulberry Bayswater", "Coach shoulder bag"),
        ("Polene Numero Un", "Coach Tabby 26"),
        ("genuine leather", "dust bag", "tan", "black", "authentic"),
        90,
        0.8,
        0.7,
    ),
    Category(
        "Sports & Leisure > Fitness equipment",
        ("weights", "treadmill", "exercise bike"),
        (
            "adjustable dumbbells",
            "Peloton bike",
            "folding treadmill",
            "rowing machine Concept2",
            "kettlebell set",
        ),
        ("Tonal smart gym", "Hydrow rower", "walking pad"),
        ("20kg", "barely used", "foldable", "with mat", "home gym"),
        160,
        0.9,
        0.9,
    ),
    Category(
        "Sports & Leisure > Camping & outdoors",
        ("tent", "camping gear", "sleeping bag"),
        ("Coleman 4 man tent", "Vango sleeping bag", "camping stove", "Osprey rucksack 65L"),
        ("Decathlon air tent 2 seconds", "Jackery power station"),
        ("waterproof", "used twice", "lightweight", "family size"),
        70,
        0.8,
        0.8,
    ),
    Category(
        "Pets > Dogs & puppies",
        ("puppy", "dog", "puppies"),
        ("Labrador puppies", "Cockapoo puppy", "French bulldog", "Border collie", "Springer spaniel"),
        ("Cavapoochon puppies", "mini Bernedoodle"),
        ("vaccinated", "microchipped", "KC registered", "ready now", "health checked"),
        900,
        0.5,
        0.8,
    ),
)

CONDITIONS = (
    "like new",
    "good condition",
    "used",
    "brand new",
    "excellent condition",
    "spares or repair",
    "hardly used",
    "great condition",
)
TITLE_TEMPLATES = (
    "{item} {detail}, {condition}",
    "{item} {noun} - {condition}",
    "{condition} {item} {detail}",
    "{item} {noun} {detail}",
    "{item}",
    "{noun}: {item} ({detail})",
)
DRIFT_TITLE_TEMPLATES = (
    "WTS {item} {detail} bnib",
    "{item} !! quick sale !!",
    "offers? {item}",
    "{item} {detail} mint, no lowballers",
    "grab a bargain: {item}",
)
DESCRIPTION_TEMPLATES = (
    "Selling my {item} {noun}. {condition_cap}, {detail}. Collection only.",
    "{condition_cap} {noun}, {detail}. Reason for sale: upgrading. {contact}",
    "{item} in {condition}. {detail_cap}. Cash on collection, no time wasters.",
    "Up for sale is a {noun}: {item}. {detail_cap}. {contact}",
    "",
)
CONTACTS = (
    "Call or text 07700 900{n:03d}.",
    "Email me at seller{n}@example.com.",
    "More photos at https://photos.example.com/{n}.",
    "WhatsApp +44 7700 900{n:03d}.",
    "",
    "",
    "",
)
VAGUE_TITLES = (
    "must go this week",
    "moving out sale",
    "offers welcome",
    "job lot",
    "as pictured",
    "bargain!!",
)
EMOJI = ("🔥", "✨", "👍", "💯", "📱", "🚗", "🏠")


def _typo(word: str, rng: np.random.Generator) -> str:
    if len(word) < 4:
        return word
    i = int(rng.integers(1, len(word) - 1))
    kind = rng.integers(3)
    if kind == 0:  # swap neighbours
        return word[: i - 1] + word[i] + word[i - 1] + word[i + 1 :]
    if kind == 1:  # drop a letter
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]  # double a letter


def _noisy(title: str, rng: np.random.Generator, noise: float) -> str:
    words = title.split()
    if rng.random() < noise:
        j = int(rng.integers(len(words)))
        words[j] = _typo(words[j], rng)
    title = " ".join(words)
    if rng.random() < noise / 2:
        title = title.upper()
    if rng.random() < noise / 2:
        title = f"{title} {rng.choice(EMOJI)}"
    return title


def _category_weights(drift: float) -> np.ndarray:
    base = np.array([c.weight for c in CATALOGUE])
    trend = np.array([c.drift_trend for c in CATALOGUE])
    weights = base * np.exp(2.0 * drift * trend)
    return weights / weights.sum()


def generate(rows: int, seed: int = 0, drift: float = 0.0, noise: float = 0.15) -> pd.DataFrame:
    """Make ``rows`` listings in the data contract. The same (rows, seed, drift, noise) gives the same rows.

    ``noise`` also sets how many sellers write a vague title ("job lot") and how many file their
    listing under the wrong category, as on real sites, so no model scores a perfect 1.0.
    """
    if not 0.0 <= drift <= 1.0:
        raise ValueError("drift must be between 0 and 1")
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(CATALOGUE), size=rows, p=_category_weights(drift))
    records = []
    for n, index in enumerate(picks):
        cat = CATALOGUE[index]
        new = drift > 0 and rng.random() < 0.6 * drift
        item = str(rng.choice(cat.new_items if new else cat.items))
        detail = str(rng.choice(cat.details))
        condition = str(rng.choice(CONDITIONS))
        fields = {
            "item": item,
            "noun": str(rng.choice(cat.nouns)),
            "detail": detail,
            "condition": condition,
            "condition_cap": condition.capitalize(),
            "detail_cap": detail[:1].upper() + detail[1:],
            "contact": str(rng.choice(CONTACTS)).format(n=int(rng.integers(1000))),
        }
        phrasing = DRIFT_TITLE_TEMPLATES if drift > 0 and rng.random() < 0.5 * drift else TITLE_TEMPLATES
        title = _noisy(str(rng.choice(phrasing)).format(**fields), rng, noise)
        if rng.random() < noise / 4:
            title = str(rng.choice(VAGUE_TITLES))
        if rng.random() < noise / 5:
            cat = CATALOGUE[int(rng.integers(len(CATALOGUE)))]
        description = str(rng.choice(DESCRIPTION_TEMPLATES)).format(**fields)
        price = rng.lognormal(np.log(cat.median_price), cat.price_sigma) * (1.0 + 0.6 * drift)
        records.append(
            {
                "listing_id": f"syn-{seed}-{n:07d}",
                "title": title,
                "description": description,
                "price": round(float(price), 0 if price > 100 else 2) if rng.random() > 0.05 else np.nan,
                "category_path": cat.path,
            }
        )
    return pd.DataFrame.from_records(records)


SYLLABLES = (*(c + v for c in "bdfgklmnprstvz" for v in "aeiou"), "ex", "on", "ar", "is", "ul", "ix")
SCALE_DETAILS = (
    "new", "used", "boxed", "large", "small", "black", "white", "red", "blue", "steel", "wooden",
    "vintage", "pro", "mini", "xl", "set of 2", "pair", "spare parts", "with warranty", "2 years old",
)  # fmt: skip
VOCABULARY_EXPONENT = 0.6  # Heaps' law exponent of the shared catalogues' word types: 0.5 to 0.7


def _pseudo_word(rng: np.random.Generator, syllables: int) -> str:
    return "".join(rng.choice(SYLLABLES, size=syllables))


@dataclass
class _ScaleCategory:
    path: str
    brands: list[str]  # shared by the department's categories, and growing
    nouns: list[str]
    details: list[str]
    median_price: float
    # one entry per listing of each product so far: a uniform pick favours popular ones
    products: list[str]
    distinct: int = 0


def _scale_categories(categories: int, rng: np.random.Generator) -> list[_ScaleCategory]:
    departments: dict[str, tuple[list[str], list[str]]] = {
        _pseudo_word(rng, 3).capitalize(): ([], [_pseudo_word(rng, 2) for _ in range(4)])
        for _ in range(max(2, int(np.sqrt(categories))))
    }
    names = list(departments)
    made = []
    for index in range(categories):
        department = names[index % len(names)]
        brands, shared_nouns = departments[department]
        made.append(
            _ScaleCategory(
                path=f"{department} > {_pseudo_word(rng, 3).capitalize()} {index}",
                brands=brands,
                nouns=[_pseudo_word(rng, 2), _pseudo_word(rng, 2), *rng.choice(shared_nouns, size=2)],
                details=[*rng.choice(SCALE_DETAILS, size=3), *(_pseudo_word(rng, 2) for _ in range(3))],
                median_price=float(np.exp(rng.uniform(np.log(5), np.log(5000)))),
                products=[],
            )
        )
    return made


def _product(category: _ScaleCategory, rng: np.random.Generator) -> str:
    """A product name; new ones keep appearing (Pitman-Yor), so vocabulary grows like a catalogue's."""
    seen = len(category.products)
    if rng.random() < (1.0 + VOCABULARY_EXPONENT * category.distinct) / (1.0 + seen):
        category.distinct += 1
        brands = category.brands
        if rng.random() < 0.1 or not brands:
            brands.append(_pseudo_word(rng, 2).capitalize())
        brand = brands[int(rng.integers(len(brands)))]
        code = f"{''.join(rng.choice(list('ABCDEFGHKLMPRSTXZ'), size=2))}{int(rng.integers(10, 9999))}"
        product = f"{brand} {code}"
    else:
        product = category.products[int(rng.integers(seen))]
    category.products.append(product)
    return product


def generate_at_scale(
    rows: int, categories: int, seed: int = 0, noise: float = 0.15, progress: bool = False
) -> pd.DataFrame:
    """Listings at marketplace scale: ``categories`` categories with Zipf-like sizes and a vocabulary
    that keeps growing as rows grow (new brands, models and typos), as real catalogues' does.

    The demo's :func:`generate` has a fixed catalogue, so a model trained on it stops growing after a
    few thousand rows; this generator is what cost-versus-size benchmarks need. The same arguments
    give the same rows.
    """
    rng = np.random.default_rng(seed)
    made = _scale_categories(categories, rng)
    sizes = 1.0 / np.arange(1, categories + 1) ** 0.8
    picks = rng.choice(categories, size=rows, p=sizes / sizes.sum())
    records = []
    for n, index in enumerate(track(picks, "Generating listings", disable=not progress)):
        cat = made[index]
        product = _product(cat, rng)
        noun, detail, condition = rng.choice(cat.nouns), rng.choice(cat.details), rng.choice(CONDITIONS)
        title = _noisy(f"{product} {noun} {detail}, {condition}", rng, noise)
        if rng.random() < noise / 5:
            cat = made[int(rng.integers(categories))]
        description = f"{condition.capitalize()} {noun}, {detail}." if rng.random() < 0.7 else ""
        records.append(
            {
                "listing_id": f"cat-{seed}-{n:08d}",
                "title": title,
                "description": description,
                "price": round(float(rng.lognormal(np.log(cat.median_price), 0.5)), 2),
                "category_path": cat.path,
            }
        )
    return pd.DataFrame.from_records(records)
