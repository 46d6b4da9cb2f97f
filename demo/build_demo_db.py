"""Build the embedded SQLite "IMPACT" demo database filled with synthetic children.

The schema is the one of data contract section 2 (tables ``county``, ``person``,
``removal`` and ``runaway_episode``) and §10.4 (``assignment``: caseworkers); dates as ISO
``YYYY-MM-DD`` text, NULL where absent.
Everything is synthetic, but shaped like Texas DFPS conservatorship data:

* removals arrive as a steady stream (with a warm-up period, so the first fiscal year
  already has children who entered care years earlier), stays last months to years,
  youths age out at 18, and some children re-enter care after a discharge;
* runaway episodes come from a per-child hazard that depends on age (mostly 15-17),
  sex and whether the youth ran before, with short absences, a few still open,
  and a handful of data-entry problems: a return never keyed, a return typed before the
  runaway, a return keyed after the child's next runaway (two episodes that overlap);
* a few runaways are keyed after the child left care, against the removal that ended, so
  the child may not be in care in the quarter of the runaway (the report's note "not sent
  to DPS: not in care during the period");
* names mix Hispanic, Anglo, African American, Vietnamese and other origins and include
  the awkward cases an export must survive (accents, apostrophes, hyphens, long names,
  non-Latin script, odd whitespace, missing or impossible values).

A fixed set of "hard-case" children is always included, whatever the scale, so tests at
small scale still meet every awkward case. The same seed and scale give identical table
contents: every random draw comes from generators seeded by ``seed``.

Run ``python demo/build_demo_db.py --help`` (or ``python -m demo.build_demo_db``).
"""

from __future__ import annotations

import argparse
import bisect
import csv
import itertools
import logging
import math
import os
import random
import sqlite3
import time
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent
REPO_ROOT = DEMO_DIR.parent
DEFAULT_OUT = REPO_ROOT / "var" / "impact_demo.sqlite"
COUNTY_CSV = DEMO_DIR / "tx_county_region.csv"

# --------------------------------------------------------------------------- schema

SCHEMA_DDL: tuple[str, ...] = (
    """CREATE TABLE county(county_code INTEGER PRIMARY KEY,
       county_name TEXT NOT NULL, fips TEXT NOT NULL, region INTEGER NOT NULL,
       region_name TEXT NOT NULL)""",
    """CREATE TABLE person(person_id INTEGER PRIMARY KEY, last_name TEXT, first_name TEXT,
       middle_name TEXT, suffix TEXT, birth_date TEXT, sex TEXT, race_ethnicity TEXT)""",
    """CREATE TABLE removal(removal_id INTEGER PRIMARY KEY,
       person_id INTEGER NOT NULL REFERENCES person,
       removal_date TEXT NOT NULL, discharge_date TEXT,
       county_code INTEGER REFERENCES county)""",
    """CREATE TABLE runaway_episode(episode_id INTEGER PRIMARY KEY,
       person_id INTEGER NOT NULL REFERENCES person,
       removal_id INTEGER REFERENCES removal, runaway_date TEXT NOT NULL, return_date TEXT,
       county_code INTEGER REFERENCES county)""",
    """CREATE TABLE assignment(assignment_id INTEGER PRIMARY KEY,
       person_id INTEGER NOT NULL REFERENCES person, worker_name TEXT NOT NULL, unit TEXT,
       supervisor_name TEXT, start_date TEXT NOT NULL, end_date TEXT,
       is_primary INTEGER NOT NULL DEFAULT 1)""",
)
INDEX_DDL: tuple[str, ...] = (
    "CREATE INDEX idx_removal_person ON removal(person_id)",
    "CREATE INDEX idx_removal_dates ON removal(removal_date, discharge_date)",
    "CREATE INDEX idx_runaway_person ON runaway_episode(person_id)",
    "CREATE INDEX idx_runaway_dates ON runaway_episode(runaway_date, return_date)",
    "CREATE INDEX idx_assignment_person ON assignment(person_id)",
)
INSERT_COUNTY = "INSERT INTO county VALUES (?, ?, ?, ?, ?)"
INSERT_PERSON = "INSERT INTO person VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
INSERT_REMOVAL = "INSERT INTO removal VALUES (?, ?, ?, ?, ?)"
INSERT_EPISODE = "INSERT INTO runaway_episode VALUES (?, ?, ?, ?, ?, ?)"
INSERT_ASSIGNMENT = "INSERT INTO assignment VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
TABLES: tuple[str, ...] = ("county", "person", "removal", "runaway_episode", "assignment")
INSERT_CHUNK_ROWS = 20_000

# ------------------------------------------------------------------ model parameters
# Calibrated so that scale 1 gives about 50,000 children in care and about 3,500
# runaway episodes (about 1.9 per youth who ran) in each fiscal year.

ENTRIES_PER_YEAR = 17_500  # first removals per year at scale 1
WARMUP_YEARS = 14  # removals simulated before the first fiscal year
STAY_MEDIAN_DAYS = 500.0
STAY_SIGMA = 0.8
SHORT_STAY_SHARE = 0.06  # stays of a few days to two months
SHORT_STAY_MAX_DAYS = 60
REENTRY_PROBABILITY = (0.095, 0.06)  # after a first, after a second discharge
REENTRY_GAP_MEDIAN_DAYS = 330.0
REENTRY_GAP_SIGMA = 0.8
REENTRY_SAME_COUNTY_SHARE = 0.8
FEMALE_SHARE = 0.49

# Age at removal, years 0..17 (relative weights): many infants, a teen bump.
AGE_AT_REMOVAL_WEIGHTS: tuple[float, ...] = (
    19.0, 7.0, 6.5, 6.0, 5.5, 5.0, 4.5, 4.3, 4.1, 3.9, 3.8, 3.7, 3.8, 4.2, 4.8, 5.2, 4.8, 3.0,
)

# Runaway hazard (episodes per year in care) by age 12..17, before and after a first run.
FIRST_RUN_RATE = 0.248
REPEAT_RUN_RATE = 1.3
RUN_AGE_FACTOR: tuple[float, ...] = (0.08, 0.22, 0.5, 0.85, 1.0, 1.0)
RUN_FEMALE_FACTOR = 1.33
RUN_FRAILTY_SHAPE = 1.2  # gamma frailty, mean 1: some youths run again and again
SAME_DAY_RETURN_SHARE = 0.08
RUN_DAYS_MEDIAN = 4.0
RUN_DAYS_SIGMA = 1.1
RUN_DAYS_MAX = 400
# A return never keyed: only on a child's latest episode, because a caseworker who keys the
# next runaway sees (and closes) the open one; else every later episode would overlap it.
# With the runs still open at the end, about 3% of all episodes have no return date.
NEVER_CLOSED_SHARE = 0.08  # of each child's latest episode
RETURN_TYPO_SHARE = 0.002  # return_date keyed before runaway_date
# A return keyed after the child's next runaway from the same removal began (a late or
# mistyped return date): two episodes that overlap, for about 0.5% of the children who ran
# (returns typed before the runaway count as open, so they overlap later episodes too: in
# all about 1% of the children who ran have two overlapping episodes).
OVERLAPPING_RETURN_SHARE = 0.004  # of consecutive episodes in one removal
OVERLAP_MAX_DAYS = 7  # the return lands 1..7 days after the next runaway
# A runaway keyed after the discharge, against the removal that ended (a youth discharged
# home or to a relative who ran from there), 1..180 days later: about 1% of all episodes.
POST_DISCHARGE_RUN_SHARE = 0.012  # of discharges at ages 12 to 17
POST_DISCHARGE_MAX_DAYS = 180
EPISODE_OTHER_COUNTY_SHARE = 0.10
EPISODE_NULL_COUNTY_SHARE = 0.005

# Caseworker assignments (contract §10.4), for the removals that reach the simulated fiscal
# years: a primary worker from the removal day, sometimes a change of worker during a long
# stay, the last assignment ending with the discharge; a few children with none (not yet
# keyed), some with a secondary worker, rarely two primaries keyed on the same day. The
# staff are synthetic: names drawn from the name pools, units and supervisors per region.
UNASSIGNED_SHARE = 0.06
WORKER_CHANGE_SHARE = 0.45          # of stays longer than WORKER_CHANGE_MIN_STAY_DAYS
WORKER_CHANGE_MIN_STAY_DAYS = 180
SECONDARY_WORKER_SHARE = 0.10
SAME_DAY_PRIMARY_SHARE = 0.003      # a second primary keyed the same day (the later id wins)
UNITS_PER_REGION = 6
WORKERS_PER_UNIT = 8
ASSIGNMENT_ID_START = 70_000_000

# Identifier ranges: PIDs straddle 1,000,000 so numeric and text order differ.
PID_LEGACY_SHARE = 0.07  # share of PIDs below 1,000,000 (6 digits)
REMOVAL_ID_START = 30_000_000
EPISODE_ID_START = 500_000
ID_GAP_P = 0.45  # gaps between consecutive ids: geometric, at least 1 (mean 2.2)

# ----------------------------------------------------------------- geography / race

# Relative size of each DFPS region (children in care), largest Region 6 to smallest 10.
REGION_WEIGHTS: dict[int, float] = {
    6: 21.5, 3: 17.0, 8: 13.5, 7: 12.5, 11: 8.5, 4: 6.5, 5: 5.2, 9: 4.4, 2: 3.9, 1: 3.6, 10: 2.2,
}
# Rough county populations in thousands (2020); unlisted counties get the floor weight.
COUNTY_POPULATION_K: dict[str, float] = {
    "Harris": 4731, "Dallas": 2613, "Tarrant": 2110, "Bexar": 2009, "Travis": 1290,
    "Collin": 1065, "Denton": 907, "Hidalgo": 871, "El Paso": 865, "Fort Bend": 822,
    "Montgomery": 621, "Williamson": 610, "Cameron": 421, "Brazoria": 373, "Bell": 370,
    "Nueces": 353, "Galveston": 351, "Lubbock": 310, "Webb": 267, "McLennan": 261,
    "Jefferson": 256, "Hays": 242, "Smith": 233, "Brazos": 233, "Ellis": 193,
    "Johnson": 180, "Guadalupe": 172, "Midland": 170, "Ector": 166, "Comal": 162,
    "Parker": 149, "Kaufman": 146, "Taylor": 143, "Randall": 140, "Grayson": 136,
    "Wichita": 129, "Gregg": 124, "Tom Green": 120, "Potter": 118, "Rockwall": 108,
    "Hunt": 100, "Bastrop": 97, "Bowie": 92, "Victoria": 92, "Liberty": 91, "Angelina": 86,
    "Orange": 85, "Coryell": 83, "Henderson": 82, "Walker": 76, "San Patricio": 69,
    "Harrison": 68, "Wise": 68, "Starr": 65, "Nacogdoches": 64, "Hood": 61, "Van Zandt": 59,
    "Maverick": 58, "Anderson": 58, "Waller": 56, "Hardin": 56, "Navarro": 52, "Rusk": 52,
    "Kerr": 52, "Polk": 50, "Cherokee": 50, "Medina": 50, "Lamar": 50, "Wilson": 50,
    "Burnet": 49, "Atascosa": 48, "Val Verde": 48, "Chambers": 46, "Caldwell": 45,
    "Kendall": 44, "Erath": 42, "Wharton": 41, "Cooke": 41, "Upshur": 40, "Jim Wells": 39,
    "Brown": 38, "Hopkins": 37, "Hill": 36, "Matagorda": 36, "Fannin": 36, "Washington": 36,
    "Howard": 34, "Jasper": 33, "Hale": 32, "Titus": 31, "Kleberg": 31, "Bee": 31,
}
COUNTY_FLOOR_WEIGHT_K = 6.0

RACE_LABELS: tuple[str, ...] = (
    "African American", "Anglo", "Asian", "Hispanic", "Native American", "Other", "Unknown",
)
# Race/ethnicity mix of children by region, in RACE_LABELS order (percent).
RACE_WEIGHTS_BY_REGION: dict[int, tuple[float, ...]] = {
    1: (12, 35, 0.5, 46, 0.5, 4, 2),
    2: (12, 45, 0.5, 36, 0.5, 4, 2),
    3: (30, 28, 1.5, 34, 0.4, 4.1, 2),
    4: (28, 50, 0.3, 16, 0.3, 4, 1.4),
    5: (33, 46, 0.5, 14, 0.3, 4, 2.2),
    6: (33, 19, 1.8, 40, 0.2, 3.5, 2.5),
    7: (22, 33, 1, 38, 0.3, 3.7, 2),
    8: (12, 20, 0.5, 62, 0.3, 3.2, 2),
    9: (8, 30, 0.3, 57, 0.4, 2.3, 2),
    10: (4, 8, 0.3, 83, 0.3, 2.4, 2),
    11: (2, 6, 0.2, 88, 0.1, 1.7, 2),
}

# ------------------------------------------------------------------------ name pools
# Ordered roughly from common to rare; a name's weight falls with its rank.

HISPANIC_SURNAMES: tuple[str, ...] = (
    "García", "Martínez", "Hernández", "López", "González", "Rodríguez", "Pérez", "Sánchez",
    "Ramírez", "Flores", "Torres", "Rivera", "Gómez", "Díaz", "Reyes", "Morales", "Cruz",
    "Ortiz", "Gutiérrez", "Chávez", "Ramos", "Castillo", "Mendoza", "Ruiz", "Álvarez",
    "Vásquez", "Jiménez", "Moreno", "Herrera", "Medina", "Aguilar", "Garza", "Castro",
    "Vargas", "Guerrero", "Salinas", "Cantú", "Treviño", "Villarreal", "Ríos", "Peña",
    "Muñoz", "Delgado", "Soto", "Contreras", "Guzmán", "Silva", "Estrada", "Sandoval",
    "Cervantes", "Rosales", "Zamora", "Ibarra", "Cavazos", "Hinojosa", "Saldaña", "Zúñiga",
    "Ochoa", "Luna", "Acosta", "Navarro", "Cortez", "Espinoza", "Mata", "Rangel", "Escobedo",
    "Olivares", "Barrera", "De La Cruz", "De León", "De La Garza", "De Los Santos", "Del Río",
    "San Miguel", "Núñez", "Ibáñez", "Ordóñez", "Castañeda", "Montemayor", "Valenzuela",
    "Quintanilla", "Benavides", "Leal", "Tijerina", "Galván", "Solís", "Maldonado", "Serna",
    "Lozano", "Domínguez", "Fuentes", "Carrillo", "Campos", "Cisneros", "Esparza", "Juárez",
    "Orozco", "Ponce", "Rocha", "Arredondo",
)
ANGLO_SURNAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson",
    "Taylor", "Thomas", "Moore", "Martin", "Thompson", "White", "Clark", "Lewis", "Walker",
    "Hall", "Allen", "Young", "King", "Wright", "Hill", "Scott", "Green", "Baker", "Adams",
    "Nelson", "Carter", "Mitchell", "Roberts", "Turner", "Phillips", "Campbell", "Parker",
    "Evans", "Edwards", "Collins", "Stewart", "Morris", "Rogers", "Reed", "Cook", "Morgan",
    "Bell", "Murphy", "Bailey", "Cooper", "Richardson", "Cox", "Howard", "Ward", "Peterson",
    "Gray", "Watson", "Brooks", "Kelly", "Sanders", "Price", "Bennett", "Wood", "Barnes",
    "Ross", "Henderson", "Jenkins", "Perry", "Powell", "Long", "Patterson", "Hughes",
    "Butler", "Foster", "Bryant", "Russell", "Griffin", "Hayes", "Myers", "Ford", "Hamilton",
    "Graham", "Sullivan", "Wallace", "Cole", "West", "Owens", "Reynolds", "Fisher", "Ellis",
    "Gibson", "McDonald", "Kennedy", "Wells", "Schmidt", "Mueller", "Schneider", "Hoffmann",
    "Becker", "Wagner", "O'Brien", "O'Connor", "O'Neal", "McKinney", "McAllister",
    "Van der Berg", "Van Zandt", "St. John", "LeBlanc", "Le Blanc", "Du Bois", "D'Angelo",
    "Boudreaux", "Thibodeaux", "Nowak", "Kowalski", "Rasmussen", "Lindqvist",
)
AFRICAN_AMERICAN_SURNAMES: tuple[str, ...] = (
    "Johnson", "Williams", "Brown", "Jackson", "Jones", "Davis", "Smith", "Washington",
    "Harris", "Robinson", "Thomas", "Taylor", "Moore", "Jefferson", "Lewis", "Walker",
    "Thompson", "White", "Green", "Wilson", "Scott", "Coleman", "Mitchell", "Hall", "Banks",
    "Freeman", "Mack", "Booker", "Dorsey", "Battle", "Gaines", "Holloway", "Randle",
    "Hawkins", "Simmons", "Wiggins", "Pittman", "Mosley", "Bradford", "Fields", "Gipson",
    "Blackmon", "Grant", "Carter", "Edwards", "Franklin", "Henderson", "Jenkins", "Joseph",
    "Pierre", "Ware", "Tolliver", "Broussard", "Celestine", "Guidry", "Givens", "Dunbar",
    "Hardy", "Sims", "Gordon", "Wade", "Moten", "Muhammad", "Okafor", "Mensah", "Boateng",
    "Adeyemi", "Tesfaye", "Abdi", "Mohamed", "Toussaint", "Baptiste", "N'Diaye", "Diallo",
)
ASIAN_SURNAMES: tuple[str, ...] = (
    "Nguyễn", "Trần", "Lê", "Phạm", "Huỳnh", "Hoàng", "Võ", "Vũ", "Đặng", "Bùi", "Đỗ", "Hồ",
    "Ngô", "Dương", "Lý", "Chen", "Wang", "Li", "Zhang", "Liu", "Wu", "Huang", "Kim", "Park",
    "Lee", "Choi", "Patel", "Shah", "Singh", "Khan", "Santos", "Dela Cruz", "Bautista",
    "Tanaka", "Vang", "Xiong", "Thao", "Lor", "Yang",
)
NATIVE_AMERICAN_SURNAMES: tuple[str, ...] = (
    "Begay", "Yazzie", "Tsosie", "Redbird", "Yellowhorse", "Tallbear", "Whitehorse",
    "Blackfeather", "Roanhorse", "Attocknie", "Tahmahkera", "Chasing Hawk",
)
HISPANIC_MALE: tuple[str, ...] = (
    "José", "Juan", "Luis", "Carlos", "Jesús", "Miguel", "Ángel", "Diego", "Adrián", "Mateo",
    "Santiago", "Sebastián", "Josué", "Iker", "Emiliano", "Damián", "Gael", "Jonathan",
    "Christopher", "Daniel", "David", "Alejandro", "Fernando", "Jorge", "Eduardo", "Ricardo",
    "Roberto", "Francisco", "Antonio", "Julián", "Martín", "Matías", "Joaquín", "Ramón",
    "Héctor", "Israel", "Abraham", "Isaac", "Aarón", "Leonardo", "Osvaldo", "Brandon",
    "Kevin", "Anthony", "Erick", "Jayden", "Adán", "Rubén", "Valentín", "Uriel",
)
HISPANIC_FEMALE: tuple[str, ...] = (
    "María", "Sofía", "Valeria", "Camila", "Ximena", "Isabella", "Mía", "Daniela", "Natalia",
    "Guadalupe", "Yesenia", "Jazmín", "Itzel", "Araceli", "Leslie", "Génesis", "Ariana",
    "Andrea", "Alejandra", "Victoria", "Esmeralda", "Karina", "Vanessa", "Jacqueline",
    "Brenda", "Alondra", "Abril", "Renata", "Regina", "Lucía", "Paola", "Fernanda",
    "Angélica", "Marisol", "Belén", "Dulce", "Yaretzi", "Aylin", "Emily", "Ashley", "Melanie",
    "Kimberly", "Nayeli", "Inés", "Luz", "Estrella", "Citlali", "Viviana", "Selena", "Arely",
)
ANGLO_MALE: tuple[str, ...] = (
    "Liam", "Noah", "Oliver", "James", "William", "Elijah", "Benjamin", "Lucas", "Mason",
    "Ethan", "Jackson", "Aiden", "Wyatt", "Hunter", "Colton", "Brayden", "Cody", "Tyler",
    "Austin", "Dylan", "Logan", "Jaxon", "Easton", "Carter", "Hudson", "Grayson", "Landon",
    "Bentley", "Kaden", "Michael", "Matthew", "Joshua", "Andrew", "Ryan", "Jacob", "Caleb",
    "Gavin", "Chase", "Blake", "Cooper", "Bryson", "Ryder", "Paxton", "Maverick", "Waylon",
    "Jace", "Braxton", "Travis", "Dakota", "Cash",
)
ANGLO_FEMALE: tuple[str, ...] = (
    "Emma", "Olivia", "Ava", "Sophia", "Harper", "Madison", "Abigail", "Emily", "Kaylee",
    "Brooklyn", "Addison", "Paisley", "Zoë", "Chloé", "Hailey", "Alexis", "Destiny", "Haley",
    "Skylar", "Rylee", "Kayleigh", "Macy", "Savannah", "Taylor", "Hannah", "Ashlyn",
    "Brianna", "Jessica", "Amber", "Summer", "Autumn", "Kinsley", "Lainey", "Raelynn",
    "Everly", "Oaklynn", "Jaycee", "Makenzie", "Payton", "Shelby", "Renée", "Aubrey",
    "Bailey", "Cheyenne", "Kylie", "Layla", "Lily", "Natalie", "Grace", "Ella",
)
AFRICAN_AMERICAN_MALE: tuple[str, ...] = (
    "Jayden", "Jeremiah", "Josiah", "Kingston", "Cameron", "DeShawn", "Jamal", "Malik",
    "Darius", "Tyrone", "Jalen", "Kendrick", "Tremaine", "Ja'Kobe", "D'Andre", "Amari", "Zion",
    "Isaiah", "Elijah", "Marquis", "Khalil", "Xavier", "Devon", "Terrell", "Dominic", "Jaylen",
    "Trevon", "Kyrie", "Demarcus", "Ke'Shawn", "Da'Quan", "Jamari", "Micah", "Kameron",
    "Tristan", "Avery", "Caleb", "Christian", "Jordan", "Kevin", "Andre", "Dwayne", "Jaxson",
    "Major", "King", "Legend", "Messiah", "Jabari", "Kobe", "Omari",
)
AFRICAN_AMERICAN_FEMALE: tuple[str, ...] = (
    "Aaliyah", "Imani", "Jada", "Nevaeh", "Kennedy", "Destiny", "Ta'Niyah", "Zaria", "Amara",
    "Jasmine", "Makayla", "Trinity", "Janiyah", "Aniyah", "La'Keisha", "Shaniqua", "Kiara",
    "Skylar", "Kamari", "De'Asia", "Ja'Naya", "Aubree", "Brielle", "Harmony", "Journee",
    "Londyn", "Madison", "Morgan", "Nia", "Precious", "Raven", "Serenity", "Tamia", "Taraji",
    "Zuri", "Ayanna", "Keyonna", "Khloe", "Kyla", "Mya", "Naomi", "Paris", "Sanaa", "Tiana",
    "Unique", "Diamond", "Essence", "Jayla", "Kaliyah", "Amaya",
)
ASIAN_MALE: tuple[str, ...] = (
    "Minh", "Huy", "Khoa", "Bảo", "Đức", "Anh", "Tuấn", "Phúc", "Long", "Nam", "Kevin",
    "Ethan", "Daniel", "Aarav", "Arjun", "Vivaan", "Rohan", "Wei", "Jun", "Hao", "Min-jun",
    "Ji-ho", "Kenji", "Tou", "Jonathan", "Ryan", "Andy", "Jason", "Vincent", "Brian",
)
ASIAN_FEMALE: tuple[str, ...] = (
    "Linh", "Ngọc", "Mai", "Thảo", "Vy", "Trâm", "Hương", "Hannah", "Emily", "Priya",
    "Ananya", "Aanya", "Mei", "Xin", "Yuna", "Seo-yeon", "Ji-woo", "Sakura", "Mai Anh", "Kim",
    "Tiffany", "Jennifer", "Michelle", "Angela", "Cindy", "Lily", "Amy", "Grace", "Isha",
    "Diya",
)
NATIVE_AMERICAN_FIRST: tuple[str, ...] = (
    "Dakota", "Cheyenne", "Sequoia", "Aiyana", "Kai", "Nizhoni", "Ahanu", "Takoda", "Winona",
    "Koda",
)
MIDDLE_MALE: tuple[str, ...] = (
    "James", "Michael", "Lee", "Ray", "Alexander", "Anthony", "David", "Allen", "Wayne",
    "Dean", "Lane", "Cole", "José", "Luis", "Ángel", "Alejandro", "Jesús", "Manuel", "Antonio",
    "Javier", "Xavier", "Jamal", "Lamar", "Dwayne", "Andre", "Elijah", "Isaiah", "Thomas",
    "John", "Robert", "Gabriel", "Daniel", "Matthew", "Christopher", "Joseph", "Duc", "Van",
    "Quốc",
)
MIDDLE_FEMALE: tuple[str, ...] = (
    "Marie", "Ann", "Lynn", "Rose", "Grace", "Nicole", "Elizabeth", "Renee", "Jade", "Mae",
    "Jean", "Michelle", "Guadalupe", "Isabel", "Sofía", "Alejandra", "Esperanza", "Lucía",
    "Milagros", "Monserrat", "Lashay", "Denise", "Monique", "Shantel", "Thị", "Ngọc", "Kim",
    "Hope", "Faith", "Jo", "Anne", "Kay", "Leigh", "Brooke", "Skye", "Victoria", "Danielle",
    "Faye",
)
SUFFIXES: tuple[tuple[str, float], ...] = (
    ("Jr", 0.35), ("Jr.", 0.25), ("III", 0.15), ("II", 0.15), ("IV", 0.05), ("Sr", 0.05),
)
LONG_LAST_NAMES: tuple[str, ...] = (  # each longer than 30 characters
    "Hernández-Villarreal de la Garza", "Christodoulopoulos-Papadimitriou",
    "Montgomery-Worthington-Fairbanks", "Rodríguez Castañeda de los Santos",
    "Vanderhoeven-Schwarzenberger Lutz", "Venkataraghavan-Ramachandran Iyer",
    "Gutiérrez-Zúñiga y Montemayor Leal", "Oyelaran-Adebayo-Oluwaseun Okonkwo",
)
LONG_FIRST_NAMES: tuple[str, ...] = (  # each longer than 20 characters
    "María de la Concepción", "Christopher Alexander", "Maximiliano Sebastián",
    "Ja'Kayleigh Destinee Mae", "Guadalupe Esmeralda Inés", "Oluwadamilare Olumide",
    "Bartholomew Christopher", "Mariaguadalupe Concepcion",
)
NON_LATIN_NAMES: tuple[tuple[str, str], ...] = (
    ("王", "伟"), ("李", "娜"), ("Иванов", "Дмитрий"), ("Петрова", "Анна"),
    ("محمد", "علي"), ("Παπαδόπουλος", "Νίκος"), ("김", "민준"), ("Nguyễn 阮", "Lan"),
    ("Cohen", "נועה"), ("Sharma", "प्रिया"),
)

# Rates of the awkward values in generated persons (the hard-case children come on top).
SUFFIX_SHARE_MALE = 0.03
SUFFIX_IN_LAST_NAME_SHARE = 0.05  # of suffixes: typed into last_name instead
MIDDLE_PRESENT_SHARE = 0.55
MIDDLE_INITIAL_SHARE = 0.06
MIDDLE_DOUBLE_SHARE = 0.05
MIDDLE_EMPTY_SHARE = 0.03  # of absent middles: '' rather than NULL
HYPHENATED_SHARE = 0.025
HISPANIC_DOUBLE_SURNAME_SHARE = 0.05
CROSS_POOL_FIRST_NAME_SHARE = 0.15
ACCENT_KEPT_SHARE = 0.3
TYPOGRAPHIC_APOSTROPHE_SHARE = 0.12
LONG_LAST_NAME_SHARE = 0.0003
LONG_FIRST_NAME_SHARE = 0.0003
NON_LATIN_SHARE = 0.0003
ODD_WHITESPACE_SHARE = 0.002
ALL_CAPS_SHARE = 0.01
LOWER_CASE_SHARE = 0.001
NULL_BIRTH_DATE_SHARE = 0.003
IMPOSSIBLE_BIRTH_DATE_SHARE = 0.0002
MISSING_FIRST_NAME_SHARE = 0.002
MISSING_LAST_NAME_SHARE = 0.00004
SEX_VARIANTS: tuple[tuple[str | None, float], ...] = (
    ("M", 0.003), ("F", 0.003), ("", 0.001), (None, 0.001), ("Unknown", 0.001),
)


@dataclass(frozen=True)
class HardCase:
    """A child always present in the demo, to exercise awkward values."""

    last_name: str | None
    first_name: str | None
    middle_name: str | None
    suffix: str | None
    sex: str | None
    race: str
    age_years: int  # age at the start of the first fiscal year
    county: str
    birth: str = "ok"  # "ok", "null" or "impossible"
    runs: bool = False  # has one runaway episode in every fiscal year
    quirk: str = ""  # "open", "typo", "null_county" or "other_county"


HARD_CASES: tuple[HardCase, ...] = (
    HardCase("Peña", "José", "Luis", None, "Male", "Hispanic", 14, "Harris", runs=True),
    HardCase("Nguyễn", "Ngọc Anh", "Thị", None, "Female", "Asian", 13, "Harris",
             runs=True, quirk="open"),
    HardCase("Smith-Jones", "Zoë", "Grace", None, "Female", "Anglo", 14, "Tarrant",
             runs=True, quirk="typo"),
    HardCase("O'Brien", "Seamus", "Patrick", "Jr.", "Male", "Anglo", 9, "Dallas"),
    HardCase("D\u2019Angelo", "Mia", None, None, "Female", "Anglo", 13, "Bexar",
             runs=True, quirk="null_county"),
    HardCase("De La Cruz", "María", "Guadalupe", None, "Female", "Hispanic", 14, "Hidalgo",
             runs=True, quirk="other_county"),
    HardCase("Van der Berg", "Pieter", "Jan", None, "Male", "Anglo", 6, "Travis"),
    HardCase("Muñoz", "Jesús", "Ángel", "Jr", "Male", "Hispanic", 12, "El Paso"),
    HardCase("Washington", "Tyrone", "Lamar", "III", "Male", "African American", 14, "Harris",
             runs=True),
    HardCase("Wolfeschlegelsteinhausenbergerdorff", "Bartholomewchristopher", "Maximilian",
             None, "Male", "Anglo", 8, "Collin"),
    HardCase("Rodríguez de la Santísima Trinidad", "María de los Ángeles Guadalupe",
             "Esperanza", None, "Female", "Hispanic", 11, "Cameron"),
    HardCase("王", "小明", None, None, "Male", "Asian", 10, "Fort Bend"),
    HardCase("Иванова", "Анастасия", None, None, "Female", "Other", 7, "Denton"),
    HardCase("Garza\u00a0Treviño", " Ana  Sofía ", "\tLucía", None, "Female", "Hispanic", 5,
             "Nueces"),
    HardCase("Johnson", "Jaylen", "Marcus", None, "Male", "African American", 4, "Dallas",
             birth="null"),
    HardCase("Brown", "Destiny", "Renee", None, "Female", "African American", 13, "Tarrant",
             birth="impossible", runs=True),
    HardCase("Hernandez", None, "Luis", None, "Male", "Hispanic", 1, "Harris"),
    HardCase("Baker", "", None, None, "Female", "Anglo", 0, "Smith"),
    HardCase(None, "Baby Boy", None, None, "M", "Unknown", 0, "Jefferson"),
    HardCase("", "Angel", None, None, "", "Hispanic", 2, "Webb"),
    HardCase("Thompson Jr.", "Marcus", "Allen", None, "Male", "African American", 14, "Bell",
             runs=True),
    HardCase("Robinson", "Ja'Kobe", "D'Andre", None, "M", "African American", 13, "Jefferson",
             runs=True),
    HardCase("mcdonald", "KAYLEE", "ann", None, "F", "Anglo", 13, "Lubbock"),
    HardCase("Großmann", "Jürgen", None, None, "Unknown", "Anglo", 9, "Comal"),
    HardCase("Østergård", "Søren", None, "II", "Male", "Anglo", 10, "Taylor"),
    HardCase("Kowalczyk", "Łukasz", None, None, None, "Anglo", 11, "Midland"),
    HardCase("Đặng", "Minh Châu", None, None, "Female", "Asian", 12, "Harris"),
    HardCase("Sæther", "Cœlina", "Anaïs", None, "Female", "Other", 8, "Williamson"),
    HardCase("O\u2018Connor", "Liam", None, None, "Male", "Anglo", 6, "Galveston"),
    HardCase("Kaʼahumanu", "Leilani", None, None, "Female", "Other", 10, "Bexar"),
)
HARD_CASE_REMOVAL_LEAD_DAYS = 90  # removed this many days (plus a step) before the window
HARD_CASE_RUN_OFFSET_DAYS = 25  # hard-case runaways fall 25..324 days into each year
HARD_CASE_RUN_SPREAD_DAYS = 300

_EPOCH_ORDINAL = 719_163  # date(1970, 1, 1).toordinal(): day numbers match datetime64[D]
_DAYS_PER_YEAR = 365.25


# ------------------------------------------------------------------------- containers


@dataclass(frozen=True)
class County:
    code: int
    name: str
    fips: str
    region: int
    region_name: str


@dataclass(frozen=True)
class Window:
    """Inclusive day numbers (days since 1970-01-01) of the simulated fiscal years."""

    start: int
    end: int
    fiscal_year_starts: tuple[int, ...]


@dataclass
class Population:
    """Children (index = position) and their removals, as numpy arrays of day numbers."""

    birth: np.ndarray
    female: np.ndarray
    race: np.ndarray
    hard_case: np.ndarray  # index into HARD_CASES, -1 for generated children
    rem_child: np.ndarray
    rem_start: np.ndarray
    rem_end: np.ndarray  # meaningful only where not rem_open
    rem_open: np.ndarray
    rem_county: np.ndarray  # county index 0..253


@dataclass(frozen=True)
class Episode:
    child: int
    removal: int
    runaway_day: int
    return_day: int | None
    county: int | None  # county index 0..253


class WeightedPool:
    """Names to draw from, the first ones more common (weight 1 / (rank + 3))."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.cumulative = list(itertools.accumulate(1.0 / (rank + 3) for rank in range(len(names))))

    def pick(self, r: random.Random) -> str:
        index = bisect.bisect_right(self.cumulative, r.random() * self.cumulative[-1])
        return self.names[min(index, len(self.names) - 1)]


# -------------------------------------------------------------------- small helpers


def day_number(value: date) -> int:
    return value.toordinal() - _EPOCH_ORDINAL


def iso_dates(days: np.ndarray) -> list[str]:
    return np.datetime_as_string(days.astype("datetime64[D]"), unit="D").tolist()


def iso_date(day: int) -> str:
    return date.fromordinal(day + _EPOCH_ORDINAL).isoformat()


def add_years(days: np.ndarray, years: int) -> np.ndarray:
    """Same calendar day ``years`` later (29 February moves to 1 March)."""
    as_dates = days.astype("datetime64[D]")
    year_starts = as_dates.astype("datetime64[Y]")
    offsets = (as_dates - year_starts.astype("datetime64[D]")).astype(np.int64)
    return (year_starts + years).astype("datetime64[D]").astype(np.int64) + offsets


def fiscal_window(first_fiscal_year: int, last_fiscal_year: int) -> Window:
    starts = tuple(day_number(date(fy - 1, 9, 1)) for fy in range(first_fiscal_year,
                                                                     last_fiscal_year + 1))
    return Window(starts[0], day_number(date(last_fiscal_year, 8, 31)), starts)


def chunked(rows: Iterable[tuple], size: int) -> Iterator[list[tuple]]:
    iterator = iter(rows)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def spaced_ids(rng: np.random.Generator, count: int, first: int) -> np.ndarray:
    """Increasing integer ids starting near ``first`` with random gaps."""
    gaps = rng.geometric(ID_GAP_P, size=count).astype(np.int64)
    return first + np.cumsum(gaps)


def strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


# ------------------------------------------------------------------------- counties


def load_counties(csv_path: Path = COUNTY_CSV) -> list[County]:
    """Row N of the CSV is Texas county number N."""
    with csv_path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    counties = [
        County(code, row["county"], row["fips"], int(row["dfps_region"]),
               f"{int(row['dfps_region'])}-{row['region_name']}")
        for code, row in enumerate(rows, start=1)
    ]
    unknown = set(COUNTY_POPULATION_K) - {county.name for county in counties}
    if unknown:
        raise ValueError(f"county weight table names unknown counties: {sorted(unknown)}")
    return counties


def county_population_weights(counties: Sequence[County]) -> np.ndarray:
    return np.array([COUNTY_POPULATION_K.get(c.name, COUNTY_FLOOR_WEIGHT_K) for c in counties])


def county_probabilities(counties: Sequence[County]) -> np.ndarray:
    """Probability that a removal happens in each county: region size x county population."""
    population = county_population_weights(counties)
    regions = np.array([c.region for c in counties])
    probabilities = np.zeros(len(counties))
    for region, weight in REGION_WEIGHTS.items():
        in_region = regions == region
        probabilities[in_region] = weight * population[in_region] / population[in_region].sum()
    return probabilities / probabilities.sum()


# ------------------------------------------------------------------ population model


def draw_stay_days(rng: np.random.Generator, count: int) -> np.ndarray:
    long_stays = rng.lognormal(math.log(STAY_MEDIAN_DAYS), STAY_SIGMA, size=count)
    short_stays = rng.integers(1, SHORT_STAY_MAX_DAYS + 1, size=count)
    is_short = rng.random(count) < SHORT_STAY_SHARE
    return np.where(is_short, short_stays, np.ceil(long_stays)).astype(np.int64)


def draw_birth_days(rng: np.random.Generator, removal_days: np.ndarray) -> np.ndarray:
    weights = np.array(AGE_AT_REMOVAL_WEIGHTS)
    ages = rng.choice(len(weights), size=len(removal_days), p=weights / weights.sum())
    fraction = rng.random(len(removal_days))
    # Infants are mostly removed in their first weeks; older children anywhere in the year.
    days_old = np.where(ages == 0, 365.0 * fraction**3, (ages + fraction) * _DAYS_PER_YEAR)
    return removal_days - np.floor(days_old).astype(np.int64)


def draw_races(rng: np.random.Generator, regions: np.ndarray) -> np.ndarray:
    table = np.array([RACE_WEIGHTS_BY_REGION[r] for r in range(1, 12)], dtype=float)
    cumulative = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
    draws = rng.random(len(regions))
    races = (draws[:, None] > cumulative[regions - 1]).sum(axis=1)
    return np.minimum(races, len(RACE_LABELS) - 1).astype(np.int8)


def simulate_population(rng: np.random.Generator, counties: Sequence[County],
                        window: Window, scale: float) -> Population:
    """Children entering care over the warm-up and the window, kept when in care in it."""
    span_start = window.start - int(WARMUP_YEARS * _DAYS_PER_YEAR)
    span_days = window.end - span_start + 1
    count = int(rng.poisson(ENTRIES_PER_YEAR * scale * span_days / _DAYS_PER_YEAR))
    first_removal = np.sort(span_start + rng.integers(0, span_days, size=count))
    county = rng.choice(len(counties), size=count, p=county_probabilities(counties))
    regions = np.array([c.region for c in counties])[county]
    race = draw_races(rng, regions)
    female = rng.random(count) < FEMALE_SHARE
    birth = draw_birth_days(rng, first_removal)
    removals = simulate_removals(rng, counties, window, first_removal, county, birth)
    rem_child, rem_start, rem_end, rem_open, rem_county = removals
    last_end = np.full(count, np.iinfo(np.int64).min)
    np.maximum.at(last_end, rem_child, np.where(rem_open, window.end, rem_end))
    keep = last_end >= window.start
    new_index = np.cumsum(keep) - 1
    kept_removal = keep[rem_child]
    return Population(
        birth=birth[keep], female=female[keep], race=race[keep],
        hard_case=np.full(int(keep.sum()), -1, dtype=np.int64),
        rem_child=new_index[rem_child[kept_removal]], rem_start=rem_start[kept_removal],
        rem_end=rem_end[kept_removal], rem_open=rem_open[kept_removal],
        rem_county=rem_county[kept_removal],
    )


def simulate_removals(rng: np.random.Generator, counties: Sequence[County], window: Window,
                      first_removal: np.ndarray, county: np.ndarray, birth: np.ndarray,
                      ) -> tuple[np.ndarray, ...]:
    """First removals, then re-entries after a discharge; stays end at the 18th birthday."""
    eighteenth = add_years(birth, 18)
    county_p = county_probabilities(counties)
    child = np.arange(len(first_removal))
    start = first_removal
    parts: list[tuple[np.ndarray, ...]] = []
    for reentry_p in (*REENTRY_PROBABILITY, 0.0):
        end = np.minimum(start + draw_stay_days(rng, len(child)), eighteenth[child])
        is_open = end > window.end
        parts.append((child, start, end, is_open, county))
        gap = np.ceil(rng.lognormal(math.log(REENTRY_GAP_MEDIAN_DAYS), REENTRY_GAP_SIGMA,
                                    size=len(child))).astype(np.int64)
        next_start = end + gap
        again = (~is_open & (rng.random(len(child)) < reentry_p)
                 & (next_start <= window.end) & (next_start < eighteenth[child] - 30))
        moved = rng.random(len(child)) >= REENTRY_SAME_COUNTY_SHARE
        new_county = rng.choice(len(counties), size=len(child), p=county_p)
        county = np.where(moved, new_county, county)[again]
        child, start = child[again], next_start[again]
    return tuple(np.concatenate(column) for column in zip(*parts, strict=True))


def add_hard_cases(population: Population, counties: Sequence[County],
                   window: Window) -> Population:
    """Append the fixed hard-case children, each in care from before the window."""
    code_of = {c.name: c.code for c in counties}
    births, starts = [], []
    for index, case in enumerate(HARD_CASES):
        birth = window.start - int(case.age_years * _DAYS_PER_YEAR) - 40 - 7 * index
        start = max(birth + 3, window.start - HARD_CASE_REMOVAL_LEAD_DAYS - 31 * index)
        births.append(birth)
        starts.append(start)
    birth = np.array(births, dtype=np.int64)
    start = np.array(starts, dtype=np.int64)
    eighteenth = add_years(birth, 18)
    is_open = eighteenth > window.end
    end = np.where(is_open, 0, eighteenth)
    count = len(HARD_CASES)
    offset = len(population.birth)
    return Population(
        birth=np.concatenate([population.birth, birth]),
        female=np.concatenate([population.female,
                               [case.sex in ("Female", "F") for case in HARD_CASES]]),
        race=np.concatenate([population.race, [RACE_LABELS.index(c.race) for c in HARD_CASES]]),
        hard_case=np.concatenate([population.hard_case, np.arange(count)]),
        rem_child=np.concatenate([population.rem_child, offset + np.arange(count)]),
        rem_start=np.concatenate([population.rem_start, start]),
        rem_end=np.concatenate([population.rem_end, end]),
        rem_open=np.concatenate([population.rem_open, is_open]),
        rem_county=np.concatenate([population.rem_county,
                                   [code_of[c.county] - 1 for c in HARD_CASES]]),
    )


# ------------------------------------------------------------------- runaway model


def draw_runaway_days(r: random.Random) -> int:
    if r.random() < SAME_DAY_RETURN_SHARE:
        return 0
    days = int(r.lognormvariate(math.log(RUN_DAYS_MEDIAN), RUN_DAYS_SIGMA))
    return min(max(days, 1), RUN_DAYS_MAX)


def runs_during_removal(r: random.Random, begin: float, end: float, birth: int,
                        base_factor: float, has_run: bool) -> list[tuple[int, int | None]]:
    """Runaway episodes (runaway day, return day or None) while at risk in [begin, end)."""
    episodes: list[tuple[int, int | None]] = []
    t = begin
    while t < end:
        age = min(max(int((t - birth) / _DAYS_PER_YEAR), 12), 17)
        segment_end = max(min(end, birth + (age + 1) * _DAYS_PER_YEAR), t + 1.0)
        rate = (REPEAT_RUN_RATE if has_run else FIRST_RUN_RATE) * RUN_AGE_FACTOR[age - 12]
        wait = r.expovariate(rate * base_factor / _DAYS_PER_YEAR)
        if t + wait >= segment_end:
            t = segment_end
            continue
        runaway_day = int(t + wait)
        return_day = runaway_day + draw_runaway_days(r)
        episodes.append((runaway_day, return_day))
        has_run = True
        t = return_day + 1.0
    return episodes


def simulate_runaways(r: random.Random, population: Population, window: Window,
                      ) -> list[Episode]:
    """Episodes of generated children (hard cases get theirs from hard_case_episodes)."""
    child = population.rem_child
    at_risk_from = np.maximum(population.rem_start, add_years(population.birth, 12)[child])
    care_end = np.where(population.rem_open, window.end + 1, population.rem_end)
    at_risk_to = np.minimum(care_end, add_years(population.birth, 18)[child])
    eligible = (at_risk_to > at_risk_from) & (population.hard_case[child] < 0)
    order = np.lexsort((population.rem_start, child))
    order = order[eligible[order]]
    episodes: list[Episode] = []
    previous_child, has_run, frailty = -1, False, 1.0
    for removal in order.tolist():
        kid = int(child[removal])
        if kid != previous_child:
            previous_child, has_run = kid, False
            frailty = r.gammavariate(RUN_FRAILTY_SHAPE, 1.0 / RUN_FRAILTY_SHAPE)
        sex_factor = RUN_FEMALE_FACTOR if population.female[kid] else 1.0
        runs = runs_during_removal(r, float(at_risk_from[removal]), float(at_risk_to[removal]),
                                   int(population.birth[kid]), sex_factor * frailty, has_run)
        is_open = bool(population.rem_open[removal])
        for runaway_day, return_day in runs:
            if is_open and return_day > window.end:
                return_day = None  # still missing on the extract date
            elif not is_open:
                return_day = min(return_day, int(population.rem_end[removal]))
            episodes.append(Episode(kid, removal, runaway_day, return_day,
                                    int(population.rem_county[removal])))
        has_run = has_run or bool(runs)
    return episodes


def add_data_entry_noise(r: random.Random, episodes: list[Episode]) -> list[Episode]:
    """Returns keyed after the next runaway, never keyed, or typed before the runaway.

    ``episodes`` must come grouped by child, oldest first (as simulate_runaways gives them).
    """
    return [with_return_slip(r, episode, is_latest)
            for episode, is_latest in zip(overlap_next_runaway(r, episodes),
                                          latest_of_child(episodes), strict=True)]


def latest_of_child(episodes: Sequence[Episode]) -> list[bool]:
    """For each episode (grouped by child, oldest first): is it its child's latest?"""
    return [index + 1 == len(episodes) or episodes[index + 1].child != episode.child
            for index, episode in enumerate(episodes)]


def overlap_next_runaway(r: random.Random, episodes: list[Episode]) -> list[Episode]:
    """Now and then a return keyed 1..OVERLAP_MAX_DAYS days after the child's next runaway
    from the same removal began: two episodes of one child that overlap in time, a
    data-entry problem the receive step warns about (contract §9)."""
    slipped = list(episodes)
    for index in range(len(episodes) - 1):
        first, second = episodes[index], episodes[index + 1]
        same_stay = first.child == second.child and first.removal == second.removal
        if same_stay and first.return_day is not None \
                and r.random() < OVERLAPPING_RETURN_SHARE:
            late_return = second.runaway_day + r.randint(1, OVERLAP_MAX_DAYS)
            slipped[index] = replace(first, return_day=late_return)
    return slipped


def with_return_slip(r: random.Random, episode: Episode, is_latest: bool) -> Episode:
    """A child's latest return sometimes never keyed; any return rarely typed before the
    runaway (365 days or 1..30 days early)."""
    if episode.return_day is None:
        return episode
    draw = r.random()
    if is_latest and draw < NEVER_CLOSED_SHARE:
        return replace(episode, return_day=None)
    if draw >= 1.0 - RETURN_TYPO_SHARE:
        back = 365 if r.random() < 0.3 else r.randint(1, 30)
        return replace(episode, return_day=episode.runaway_day - back)
    return episode


def post_discharge_episodes(r: random.Random, population: Population, window: Window,
                            ) -> list[Episode]:
    """Runaways keyed 1..POST_DISCHARGE_MAX_DAYS days after a discharge at ages 12 to 17,
    against the removal that ended. Unless the child is back in care by then, the child is
    not in care in the quarter of such a runaway (the report's "not sent to DPS: not in care
    during the period")."""
    episodes = []
    for removal in post_discharge_candidates(population).tolist():
        if r.random() >= POST_DISCHARGE_RUN_SHARE:
            continue
        runaway_day = int(population.rem_end[removal]) + r.randint(1, POST_DISCHARGE_MAX_DAYS)
        return_day = runaway_day + draw_runaway_days(r)
        if runaway_day > window.end:
            continue
        still_missing = return_day > window.end  # on the extract date
        episodes.append(Episode(int(population.rem_child[removal]), removal, runaway_day,
                                None if still_missing else return_day,
                                int(population.rem_county[removal])))
    return episodes


def post_discharge_candidates(population: Population) -> np.ndarray:
    """Removals of generated children that ended at ages 12 to 17, early enough that a
    runaway up to POST_DISCHARGE_MAX_DAYS later still comes before the 18th birthday."""
    child = population.rem_child
    twelfth = add_years(population.birth, 12)[child]
    eighteenth = add_years(population.birth, 18)[child]
    ended = ~population.rem_open & (population.hard_case[child] < 0)
    return np.flatnonzero(ended & (population.rem_end >= twelfth)
                          & (population.rem_end + POST_DISCHARGE_MAX_DAYS < eighteenth))


def assign_episode_counties(r: random.Random, episodes: list[Episode],
                            counties: Sequence[County]) -> list[Episode]:
    """Mostly the removal county, sometimes another county of its region, rarely none."""
    population = county_population_weights(counties)
    by_region: dict[int, tuple[list[int], list[float]]] = {}
    for index, county in enumerate(counties):
        members, _ = by_region.setdefault(county.region, ([], []))
        members.append(index)
    for members, cumulative in by_region.values():
        cumulative.extend(itertools.accumulate(float(population[i]) for i in members))
    placed = []
    for episode in episodes:
        county = episode.county
        draw = r.random()
        if county is not None and draw < EPISODE_NULL_COUNTY_SHARE:
            county = None
        elif county is not None and draw < EPISODE_NULL_COUNTY_SHARE + EPISODE_OTHER_COUNTY_SHARE:
            county = pick_other_county_in_region(r, county, *by_region[counties[county].region])
        placed.append(Episode(episode.child, episode.removal, episode.runaway_day,
                              episode.return_day, county))
    return placed


def pick_other_county_in_region(r: random.Random, county: int, members: list[int],
                                cumulative: list[float]) -> int:
    for _ in range(8):
        index = bisect.bisect_right(cumulative, r.random() * cumulative[-1])
        candidate = members[min(index, len(members) - 1)]
        if candidate != county:
            return candidate
    return county


def hard_case_episodes(population: Population, counties: Sequence[County],
                       window: Window) -> list[Episode]:
    """One episode per fiscal year for each running hard case, with its quirk."""
    first_hard = int(np.argmax(population.hard_case >= 0))
    removal_of = {int(population.rem_child[i]): i
                  for i in np.flatnonzero(population.hard_case[population.rem_child] >= 0)}
    episodes = []
    for case_index, case in enumerate(HARD_CASES):
        if not case.runs:
            continue
        kid = first_hard + case_index
        removal = removal_of[kid]
        county = int(population.rem_county[removal])
        last_day = window.end if population.rem_open[removal] else population.rem_end[removal]
        for year_index, fy_start in enumerate(window.fiscal_year_starts):
            offset = (23 * case_index + 11 * year_index) % HARD_CASE_RUN_SPREAD_DAYS
            runaway_day = fy_start + HARD_CASE_RUN_OFFSET_DAYS + offset
            if runaway_day >= last_day:
                continue
            return_day: int | None = runaway_day + 1 + (5 * case_index + year_index) % 12
            episode_county: int | None = county
            is_last_year = year_index == len(window.fiscal_year_starts) - 1
            if case.quirk == "open" and is_last_year:
                return_day = None
            elif case.quirk == "typo" and year_index == 0:
                return_day = runaway_day - 3
            elif case.quirk == "null_county" and year_index == 0:
                episode_county = None
            elif case.quirk == "other_county":
                episode_county = next(i for i, c in enumerate(counties)
                                      if c.region == counties[county].region and i != county)
            episodes.append(Episode(kid, removal, runaway_day, return_day, episode_county))
    return episodes


# ------------------------------------------------------------------------ person rows


class NameMaker:
    """Draws realistic (and sometimes awkward) names for generated children."""

    def __init__(self, r: random.Random) -> None:
        self.r = r
        pool = WeightedPool
        self.surnames = {
            "Hispanic": pool(HISPANIC_SURNAMES), "Anglo": pool(ANGLO_SURNAMES),
            "African American": pool(AFRICAN_AMERICAN_SURNAMES), "Asian": pool(ASIAN_SURNAMES),
            "Native American": pool(NATIVE_AMERICAN_SURNAMES),
        }
        self.first_names = {
            ("Hispanic", True): pool(HISPANIC_FEMALE), ("Hispanic", False): pool(HISPANIC_MALE),
            ("Anglo", True): pool(ANGLO_FEMALE), ("Anglo", False): pool(ANGLO_MALE),
            ("African American", True): pool(AFRICAN_AMERICAN_FEMALE),
            ("African American", False): pool(AFRICAN_AMERICAN_MALE),
            ("Asian", True): pool(ASIAN_FEMALE), ("Asian", False): pool(ASIAN_MALE),
            ("Native American", True): pool(NATIVE_AMERICAN_FIRST + ANGLO_FEMALE[:20]),
            ("Native American", False): pool(NATIVE_AMERICAN_FIRST + ANGLO_MALE[:20]),
        }
        self.middle_names = {True: pool(MIDDLE_FEMALE), False: pool(MIDDLE_MALE)}

    def name_origin(self, race: str) -> str:
        """Which name pool a child's names come from."""
        if race in ("Other", "Unknown"):
            return self.r.choice(("Hispanic", "Hispanic", "Anglo", "African American", "Asian"))
        if race == "Native American" and self.r.random() < 0.6:
            return self.r.choice(("Anglo", "Hispanic", "Native American"))
        return race

    def surname(self, origin: str) -> str:
        r = self.r
        name = self.surnames[origin].pick(r)
        if origin == "Hispanic" and r.random() < HISPANIC_DOUBLE_SURNAME_SHARE:
            name = f"{name} {self.surnames['Hispanic'].pick(r)}"
        elif r.random() < HYPHENATED_SHARE:
            name = f"{name}-{self.surnames[r.choice((origin, 'Anglo', 'Hispanic'))].pick(r)}"
        return name

    def first_name(self, origin: str, female: bool) -> str:
        if self.r.random() < CROSS_POOL_FIRST_NAME_SHARE:
            origin = self.r.choice(("Hispanic", "Anglo", "African American"))
        return self.first_names[(origin, female)].pick(self.r)

    def middle_name(self, female: bool) -> str | None:
        r = self.r
        if r.random() >= MIDDLE_PRESENT_SHARE:
            return "" if r.random() < MIDDLE_EMPTY_SHARE else None
        name = self.middle_names[female].pick(r)
        draw = r.random()
        if draw < MIDDLE_INITIAL_SHARE:
            return strip_accents(name[0]) + ("." if r.random() < 0.5 else "")
        if draw < MIDDLE_INITIAL_SHARE + MIDDLE_DOUBLE_SHARE:
            return f"{name} {self.middle_names[female].pick(r)}"
        return name

    def suffix(self, female: bool) -> str | None:
        if female or self.r.random() >= SUFFIX_SHARE_MALE:
            return None
        labels, weights = zip(*SUFFIXES, strict=True)
        return self.r.choices(labels, weights)[0]

    def as_keyed(self, name: str | None) -> str | None:
        """Accents kept only sometimes, an occasional typographic apostrophe."""
        if not name:
            return name
        r = self.r
        if not name.isascii() and r.random() >= ACCENT_KEPT_SHARE:
            name = strip_accents(name)
        if "'" in name and r.random() < TYPOGRAPHIC_APOSTROPHE_SHARE:
            name = name.replace("'", "\u2019")
        return name

    def odd_whitespace(self, name: str) -> str:
        variants = (f" {name}", f"{name} ", name.replace(" ", "  ", 1) if " " in name
                    else f"{name}  ", name.replace(" ", "\u00a0") if " " in name
                    else f"{name}\u00a0", f"\t{name}")
        return self.r.choice(variants)

    def names(self, race: str, female: bool) -> tuple[str | None, ...]:
        """(last, first, middle, suffix) for one child."""
        r = self.r
        origin = self.name_origin(race)
        last: str | None = self.as_keyed(self.surname(origin))
        first: str | None = self.as_keyed(self.first_name(origin, female))
        middle = self.as_keyed(self.middle_name(female))
        suffix = self.suffix(female)
        if suffix and r.random() < SUFFIX_IN_LAST_NAME_SHARE:
            last, suffix = f"{last} {suffix}", None
        if r.random() < LONG_LAST_NAME_SHARE:
            last = r.choice(LONG_LAST_NAMES)
        if r.random() < LONG_FIRST_NAME_SHARE:
            first = r.choice(LONG_FIRST_NAMES)
        if r.random() < NON_LATIN_SHARE:
            last, first = r.choice(NON_LATIN_NAMES)
        return self.with_keying_slips(last, first, middle, suffix)

    def with_keying_slips(self, last: str | None, first: str | None, middle: str | None,
                          suffix: str | None) -> tuple[str | None, ...]:
        """Odd whitespace, upper/lower case, and missing names."""
        r = self.r
        if r.random() < ODD_WHITESPACE_SHARE:
            if r.random() < 0.5 and last:
                last = self.odd_whitespace(last)
            elif first:
                first = self.odd_whitespace(first)
        draw = r.random()
        if draw < ALL_CAPS_SHARE:
            last, first = (last or "").upper(), (first or "").upper()
        elif draw < ALL_CAPS_SHARE + LOWER_CASE_SHARE:
            last, first = (last or "").lower(), (first or "").lower()
        if r.random() < MISSING_FIRST_NAME_SHARE:
            first = r.choice((None, ""))
        if r.random() < MISSING_LAST_NAME_SHARE:
            last = r.choice((None, ""))
        return last, first, middle, suffix


def keyed_sex(r: random.Random, female: bool) -> str | None:
    draw = r.random()
    for value, share in SEX_VARIANTS:
        if draw < share:
            if value in ("M", "F"):
                return "F" if female else "M"
            return value
        draw -= share
    return "Female" if female else "Male"


def keyed_birth_date(r: random.Random, birth_iso: str) -> str | None:
    draw = r.random()
    if draw < NULL_BIRTH_DATE_SHARE:
        return None
    if draw < NULL_BIRTH_DATE_SHARE + IMPOSSIBLE_BIRTH_DATE_SHARE:
        return birth_iso[:5] + r.choice(("02-30", "02-31", "04-31", "06-31", "09-31", "11-31"))
    return birth_iso


def hard_case_person(case: HardCase, birth_iso: str) -> tuple[str | None, ...]:
    if case.birth == "null":
        birth: str | None = None
    elif case.birth == "impossible":
        birth = birth_iso[:5] + "02-30"
    else:
        birth = birth_iso
    return (case.last_name, case.first_name, case.middle_name, case.suffix, birth, case.sex,
            case.race)


def person_rows(r: random.Random, population: Population, order: np.ndarray,
                person_ids: np.ndarray) -> Iterator[tuple]:
    """Rows for table person, in person_id order, built a chunk at a time."""
    names = NameMaker(r)
    for chunk_start in range(0, len(order), INSERT_CHUNK_ROWS):
        kids = order[chunk_start:chunk_start + INSERT_CHUNK_ROWS]
        births = iso_dates(population.birth[kids])
        pids = person_ids[chunk_start:chunk_start + INSERT_CHUNK_ROWS].tolist()
        races = population.race[kids].tolist()
        females = population.female[kids].tolist()
        hard = population.hard_case[kids].tolist()
        for pid, birth, race, female, case in zip(pids, births, races, females, hard,
                                                  strict=True):
            if case >= 0:
                yield (pid, *hard_case_person(HARD_CASES[case], birth))
                continue
            race_label = RACE_LABELS[race]
            last, first, middle, suffix = names.names(race_label, female)
            yield (pid, last, first, middle, suffix, keyed_birth_date(r, birth),
                   keyed_sex(r, female), race_label)


def removal_rows(population: Population, order: np.ndarray, removal_ids: np.ndarray,
                 pid_of_child: np.ndarray) -> Iterator[tuple]:
    for chunk_start in range(0, len(order), INSERT_CHUNK_ROWS):
        rows = order[chunk_start:chunk_start + INSERT_CHUNK_ROWS]
        ids = removal_ids[chunk_start:chunk_start + INSERT_CHUNK_ROWS].tolist()
        pids = pid_of_child[population.rem_child[rows]].tolist()
        starts = iso_dates(population.rem_start[rows])
        ends = iso_dates(population.rem_end[rows])
        is_open = population.rem_open[rows].tolist()
        codes = (population.rem_county[rows] + 1).tolist()
        for row in zip(ids, pids, starts, ends, is_open, codes, strict=True):
            removal_id, pid, start, end, still_open, code = row
            yield removal_id, pid, start, None if still_open else end, code


def episode_rows(episodes: Sequence[Episode], episode_ids: np.ndarray,
                 pid_of_child: np.ndarray, removal_id_of: np.ndarray) -> Iterator[tuple]:
    for episode_id, episode in zip(episode_ids.tolist(), episodes, strict=True):
        yield (episode_id, int(pid_of_child[episode.child]),
               int(removal_id_of[episode.removal]), iso_date(episode.runaway_day),
               None if episode.return_day is None else iso_date(episode.return_day),
               None if episode.county is None else episode.county + 1)


@dataclass(frozen=True)
class StaffMember:
    worker: str
    unit: str
    supervisor: str


def staff_roster(r: random.Random, counties: Sequence[County]) -> dict[int, list[StaffMember]]:
    """Per DFPS region, UNITS_PER_REGION units of WORKERS_PER_UNIT synthetic caseworkers and
    one supervisor each (unit names like "6-Houston Unit 3")."""
    firsts = WeightedPool(ANGLO_FEMALE + HISPANIC_FEMALE + AFRICAN_AMERICAN_FEMALE + ANGLO_MALE
                          + HISPANIC_MALE + AFRICAN_AMERICAN_MALE)
    lasts = WeightedPool(ANGLO_SURNAMES + HISPANIC_SURNAMES + AFRICAN_AMERICAN_SURNAMES)
    regions = sorted({(c.region, c.region_name) for c in counties})
    roster: dict[int, list[StaffMember]] = {}
    for region, region_name in regions:
        members = []
        for unit_number in range(1, UNITS_PER_REGION + 1):
            unit = f"{region_name} Unit {unit_number}"
            supervisor = f"{firsts.pick(r)} {lasts.pick(r)}"
            members += [StaffMember(f"{firsts.pick(r)} {lasts.pick(r)}", unit, supervisor)
                        for _ in range(WORKERS_PER_UNIT)]
        roster[region] = members
    return roster


def removal_assignments(r: random.Random, start: int, end: int | None,
                        staff: list[StaffMember]) -> list[tuple[int, int | None, int, StaffMember]]:
    """(start day, end day or None, is_primary, staff member) of one removal's assignments."""
    if r.random() < UNASSIGNED_SHARE:
        return []
    rows: list[tuple[int, int | None, int, StaffMember]] = []
    first = r.choice(staff)
    stay_end = end if end is not None else start + 10 * 365
    if stay_end - start > WORKER_CHANGE_MIN_STAY_DAYS and r.random() < WORKER_CHANGE_SHARE:
        change = r.randint(start + 60, stay_end - 30)
        rows.append((start, change - 1, 1, first))
        rows.append((change, end, 1, r.choice(staff)))
    else:
        rows.append((start, end, 1, first))
    if r.random() < SAME_DAY_PRIMARY_SHARE:
        last_start, last_end, _, _ = rows[-1]
        rows.append((last_start, last_end, 1, r.choice(staff)))
    if r.random() < SECONDARY_WORKER_SHARE:
        rows.append((min(start + r.randint(0, 60), stay_end), end, 0, r.choice(staff)))
    return rows


def assignment_rows(r: random.Random, population: Population, window: Window,
                    counties: Sequence[County], ids: Identifiers) -> list[tuple]:
    """Rows for table assignment (contract §10.4), ids in start-date order."""
    staff = staff_roster(r, counties)
    drafts = []
    reaching = population.rem_open | (population.rem_end >= window.start - 365)
    for removal in np.flatnonzero(reaching).tolist():
        end = None if population.rem_open[removal] else int(population.rem_end[removal])
        region = counties[int(population.rem_county[removal])].region
        pid = int(ids.pid_of_child[population.rem_child[removal]])
        for start_day, end_day, primary, member in removal_assignments(
                r, int(population.rem_start[removal]), end, staff[region]):
            drafts.append((start_day, pid, end_day, primary, member))
    drafts.sort(key=lambda d: (d[0], d[1]))
    return [(ASSIGNMENT_ID_START + number, pid, member.worker, member.unit, member.supervisor,
             iso_date(start_day), None if end_day is None else iso_date(end_day), primary)
            for number, (start_day, pid, end_day, primary, member) in enumerate(drafts)]


def county_rows(counties: Sequence[County]) -> Iterator[tuple]:
    for c in counties:
        yield c.code, c.name, c.fips, c.region, c.region_name


# ------------------------------------------------------------------------- database


def configure_for_bulk_load(connection: sqlite3.Connection) -> None:
    """No journal and no syncs while building a throw-away temporary file."""
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")


def create_schema(connection: sqlite3.Connection) -> None:
    """The tables of contract §2 and §10.4 (indexes come after the inserts)."""
    for statement in SCHEMA_DDL:
        connection.execute(statement)


def insert_rows(connection: sqlite3.Connection, statement: str, rows: Iterable[tuple]) -> int:
    count = 0
    for chunk in chunked(rows, INSERT_CHUNK_ROWS):
        connection.executemany(statement, chunk)
        count += len(chunk)
    return count


def create_indexes(connection: sqlite3.Connection) -> None:
    for statement in INDEX_DDL:
        connection.execute(statement)


def replace_atomically(temporary: Path, target: Path) -> None:
    with temporary.open("rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(temporary, target)
    if hasattr(os, "O_DIRECTORY"):
        folder = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


# --------------------------------------------------------------------------- build


def first_pid(rng: np.random.Generator, person_count: int) -> int:
    """Start so that about PID_LEGACY_SHARE of PIDs have 6 digits, the rest 7."""
    mean_gap = 1.0 / ID_GAP_P
    below = max(int(PID_LEGACY_SHARE * person_count * mean_gap), 20)
    return 1_000_000 - below - int(rng.integers(0, 50))


@dataclass(frozen=True)
class Identifiers:
    """Database ids: person order and ids, removal ids, episodes in id order."""

    person_order: np.ndarray  # child indices in person_id order
    person_ids: np.ndarray
    pid_of_child: np.ndarray
    removal_order: np.ndarray  # removal indices in removal_id order
    removal_ids: np.ndarray
    removal_id_of: np.ndarray
    episodes: list[Episode]  # in episode_id order
    episode_ids: np.ndarray


def assign_identifiers(rng: np.random.Generator, population: Population,
                       episodes: list[Episode]) -> Identifiers:
    """Ids increase with the date of the first removal, removal, runaway (gaps between)."""
    first_removal = np.full(len(population.birth), np.iinfo(np.int64).max)
    np.minimum.at(first_removal, population.rem_child, population.rem_start)
    person_order = np.argsort(first_removal, kind="stable")
    person_ids = spaced_ids(rng, len(person_order), first_pid(rng, len(person_order)))
    pid_of_child = np.empty_like(person_ids)
    pid_of_child[person_order] = person_ids

    removal_order = np.lexsort((pid_of_child[population.rem_child], population.rem_start))
    removal_ids = spaced_ids(rng, len(removal_order), REMOVAL_ID_START)
    removal_id_of = np.empty_like(removal_ids)
    removal_id_of[removal_order] = removal_ids

    ordered = sorted(episodes, key=lambda e: (e.runaway_day, int(pid_of_child[e.child]),
                                              e.removal))
    episode_ids = spaced_ids(rng, len(ordered), EPISODE_ID_START)
    return Identifiers(person_order, person_ids, pid_of_child, removal_order, removal_ids,
                       removal_id_of, ordered, episode_ids)


def write_database(db_path: Path, counties: Sequence[County], population: Population,
                   ids: Identifiers, names_random: random.Random,
                   assignments: list[tuple]) -> dict[str, int]:
    connection = sqlite3.connect(db_path)
    try:
        configure_for_bulk_load(connection)
        create_schema(connection)
        counts = {
            "county": insert_rows(connection, INSERT_COUNTY, county_rows(counties)),
            "person": insert_rows(connection, INSERT_PERSON, person_rows(
                names_random, population, ids.person_order, ids.person_ids)),
            "removal": insert_rows(connection, INSERT_REMOVAL, removal_rows(
                population, ids.removal_order, ids.removal_ids, ids.pid_of_child)),
            "runaway_episode": insert_rows(connection, INSERT_EPISODE, episode_rows(
                ids.episodes, ids.episode_ids, ids.pid_of_child, ids.removal_id_of)),
            "assignment": insert_rows(connection, INSERT_ASSIGNMENT, assignments),
        }
        create_indexes(connection)
        connection.commit()
    finally:
        connection.close()
    return counts


def temporary_path_for(path: Path) -> Path:
    temporary = path.with_suffix(".tmp")
    return path.with_name(f"{path.name}.tmp") if temporary == path else temporary


def build_demo_database(path: Path, *, seed: int = 20250, scale: float = 1.0,
                        first_fiscal_year: int = 2024, last_fiscal_year: int = 2026,
                        ) -> dict[str, int]:
    """Build (replace atomically: write to path.with_suffix('.tmp') in the same folder,
    then os.replace) and return row counts per table."""
    if scale <= 0:
        raise ValueError("scale must be positive")
    if first_fiscal_year > last_fiscal_year:
        raise ValueError("first fiscal year is after the last fiscal year")
    path = Path(path)
    counties = load_counties()
    window = fiscal_window(first_fiscal_year, last_fiscal_year)
    rng = np.random.default_rng(seed)
    # Seeded generators for synthetic data, not for security.
    runaway_random = random.Random(int(rng.integers(0, 2**62)))  # nosec B311
    names_random = random.Random(int(rng.integers(0, 2**62)))  # nosec B311

    population = add_hard_cases(simulate_population(rng, counties, window, scale),
                                counties, window)
    episodes = simulate_runaways(runaway_random, population, window)
    episodes = add_data_entry_noise(runaway_random, episodes)
    episodes += post_discharge_episodes(runaway_random, population, window)
    episodes = assign_episode_counties(runaway_random, episodes, counties)
    episodes += hard_case_episodes(population, counties, window)
    ids = assign_identifiers(rng, population, episodes)
    # Its own seeded stream, so the other tables stay as they were before assignments existed.
    staff_random = random.Random(f"{seed}:assignment")  # nosec B311
    assignments = assignment_rows(staff_random, population, window, counties, ids)

    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = temporary_path_for(path)
    temporary.unlink(missing_ok=True)
    try:
        counts = write_database(temporary, counties, population, ids, names_random,
                                assignments)
        replace_atomically(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return counts


# ---------------------------------------------------------------------------- CLI


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Build the synthetic IMPACT demo database (SQLite).")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"database file to write (default: {DEFAULT_OUT})")
    parser.add_argument("--seed", type=int, default=20250, help="random seed (default 20250)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiplier on the number of children and episodes (default 1)")
    parser.add_argument("--first-fy", type=int, default=2024, help="first fiscal year")
    parser.add_argument("--last-fy", type=int, default=2026, help="last fiscal year")
    parser.add_argument("--force", action="store_true",
                        help="rebuild even if the database file already exists")
    args = parser.parse_args(argv)
    if args.scale <= 0:
        parser.error("--scale must be positive")
    if args.first_fy > args.last_fy:
        parser.error("--first-fy must not be after --last-fy")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out: Path = args.out
    if out.exists() and not args.force:
        logger.info("demo database %s already exists; kept it (use --force to rebuild)", out)
        return 0
    began = time.perf_counter()
    counts = build_demo_database(out, seed=args.seed, scale=args.scale,
                                 first_fiscal_year=args.first_fy, last_fiscal_year=args.last_fy)
    logger.info("built demo database %s in %.1f s: %s", out, time.perf_counter() - began,
                ", ".join(f"{table} {count}" for table, count in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
