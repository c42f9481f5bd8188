"""Per-country profiles for the synthetic-data generator: faker locales, agencies, places,
airports, company suffixes. Public facts (place names, coordinates, agency names) only; every
person, number and contact the generator makes from them is invented.

A member state without a profile here (one added to ``members.yaml`` later) gets a generic
profile built from its languages, so the generator keeps working.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Place:
    name: str
    lat: float | None
    lon: float | None
    kind: str = "city"  # city | border | port | airport | transit


@dataclass(frozen=True)
class Profile:
    code: str
    name: str  # the country's name in its own main language
    language: str  # es | en | pt | fr
    locales: tuple[str, ...]  # faker locales for names, most used first
    police: tuple[str, ...]
    migration: str
    places: tuple[Place, ...]
    airport: str  # IATA code of the main international airport
    company_suffix: str = "S.A."
    two_surnames: bool = False
    phone_prefix: str = "+1"
    tld: str = "example"
    national_id: bool = True
    extra: dict[str, str] = field(default_factory=dict)


def _p(name: str, lat: float, lon: float, kind: str = "city") -> Place:
    return Place(name, lat, lon, kind)


PROFILES: dict[str, Profile] = {
    p.code: p
    for p in (
        Profile(
            "AR",
            "Argentina",
            "es",
            ("es_AR",),
            ("Policía Federal Argentina", "Gendarmería Nacional Argentina"),
            "Dirección Nacional de Migraciones",
            (
                _p("Buenos Aires", -34.60, -58.38),
                _p("Puerto Iguazú", -25.60, -54.57, "border"),
                _p("La Quiaca", -22.10, -65.60, "border"),
                _p("Salta", -24.78, -65.41),
                _p("Posadas", -27.37, -55.90, "border"),
            ),
            "EZE",
            "S.R.L.",
            True,
            "+54",
            "ar",
        ),
        Profile(
            "BB",
            "Barbados",
            "en",
            ("en_GB",),
            ("Royal Barbados Police Force",),
            "Barbados Immigration Department",
            (
                _p("Bridgetown", 13.10, -59.61, "port"),
                _p("Speightstown", 13.25, -59.64),
                _p("Oistins", 13.06, -59.54, "port"),
                _p("Grantley Adams Airport", 13.07, -59.49, "airport"),
            ),
            "BGI",
            "Ltd.",
            False,
            "+1 246",
            "bb",
        ),
        Profile(
            "BZ",
            "Belize",
            "en",
            ("en_US", "es_MX"),
            ("Belize Police Department",),
            "Immigration and Nationality Department",
            (
                _p("Belize City", 17.50, -88.20, "port"),
                _p("Benque Viejo del Carmen", 17.07, -89.14, "border"),
                _p("Corozal", 18.39, -88.39, "border"),
                _p("Punta Gorda", 16.10, -88.81, "port"),
            ),
            "BZE",
            "Ltd.",
            False,
            "+501",
            "bz",
        ),
        Profile(
            "BR",
            "Brasil",
            "pt",
            ("pt_BR",),
            ("Polícia Federal", "Polícia Rodoviária Federal"),
            "Polícia Federal - Migração",
            (
                _p("São Paulo", -23.55, -46.63),
                _p("Foz do Iguaçu", -25.55, -54.59, "border"),
                _p("Pacaraima", 4.48, -61.15, "border"),
                _p("Manaus", -3.12, -60.02),
                _p("Corumbá", -19.01, -57.65, "border"),
            ),
            "GRU",
            "Ltda.",
            True,
            "+55",
            "br",
        ),
        Profile(
            "CA",
            "Canada",
            "en",
            ("en_CA", "fr_CA"),
            ("Royal Canadian Mounted Police", "Service de police de la Ville de Montréal"),
            "Canada Border Services Agency",
            (
                _p("Toronto", 43.65, -79.38),
                _p("Montréal", 45.50, -73.57),
                _p("Lacolle", 45.08, -73.37, "border"),
                _p("Vancouver", 49.28, -123.12, "port"),
            ),
            "YYZ",
            "Inc.",
            False,
            "+1",
            "ca",
            national_id=False,
        ),
        Profile(
            "CL",
            "Chile",
            "es",
            ("es_CL",),
            ("Policía de Investigaciones de Chile", "Carabineros de Chile"),
            "Servicio Nacional de Migraciones",
            (
                _p("Santiago", -33.45, -70.67),
                _p("Colchane", -19.27, -68.64, "border"),
                _p("Arica", -18.48, -70.31, "port"),
                _p("Iquique", -20.21, -70.15, "port"),
            ),
            "SCL",
            "SpA",
            True,
            "+56",
            "cl",
        ),
        Profile(
            "CO",
            "Colombia",
            "es",
            ("es_CO",),
            ("Policía Nacional de Colombia", "Fiscalía General de la Nación"),
            "Migración Colombia",
            (
                _p("Bogotá", 4.71, -74.07),
                _p("Necoclí", 8.43, -76.78, "port"),
                _p("Cúcuta", 7.89, -72.51, "border"),
                _p("Turbo", 8.09, -76.73, "port"),
                _p("Ipiales", 0.83, -77.64, "border"),
            ),
            "BOG",
            "S.A.S.",
            True,
            "+57",
            "co",
        ),
        Profile(
            "CR",
            "Costa Rica",
            "es",
            ("es_MX",),
            ("Organismo de Investigación Judicial", "Policía Profesional de Migración"),
            "Dirección General de Migración y Extranjería",
            (
                _p("San José", 9.93, -84.08),
                _p("Paso Canoas", 8.53, -82.84, "border"),
                _p("Peñas Blancas", 11.21, -85.61, "border"),
                _p("Los Chiles", 11.03, -84.71, "border"),
            ),
            "SJO",
            "S.A.",
            True,
            "+506",
            "cr",
        ),
        Profile(
            "EC",
            "Ecuador",
            "es",
            ("es_CO",),
            ("Policía Nacional del Ecuador",),
            "Ministerio de Relaciones Exteriores y Movilidad Humana",
            (
                _p("Quito", -0.18, -78.47),
                _p("Guayaquil", -2.19, -79.89, "port"),
                _p("Huaquillas", -3.48, -80.23, "border"),
                _p("Tulcán", 0.81, -77.72, "border"),
            ),
            "UIO",
            "S.A.",
            True,
            "+593",
            "ec",
        ),
        Profile(
            "SV",
            "El Salvador",
            "es",
            ("es_MX",),
            ("Policía Nacional Civil",),
            "Dirección General de Migración y Extranjería",
            (
                _p("San Salvador", 13.69, -89.22),
                _p("La Hachadura", 13.86, -90.09, "border"),
                _p("El Amatillo", 13.60, -87.76, "border"),
                _p("Acajutla", 13.59, -89.83, "port"),
            ),
            "SAL",
            "S.A. de C.V.",
            True,
            "+503",
            "sv",
        ),
        Profile(
            "GT",
            "Guatemala",
            "es",
            ("es_MX",),
            ("Policía Nacional Civil", "Ministerio Público"),
            "Instituto Guatemalteco de Migración",
            (
                _p("Ciudad de Guatemala", 14.63, -90.51),
                _p("Tecún Umán", 14.67, -92.14, "border"),
                _p("Esquipulas", 14.56, -89.35, "border"),
                _p("Puerto Barrios", 15.73, -88.59, "port"),
            ),
            "GUA",
            "S.A.",
            True,
            "+502",
            "gt",
        ),
        Profile(
            "HT",
            "Haïti",
            "fr",
            ("fr_FR",),
            ("Police Nationale d'Haïti",),
            "Direction de l'Immigration et de l'Émigration",
            (
                _p("Port-au-Prince", 18.54, -72.34, "port"),
                _p("Ouanaminthe", 19.55, -71.72, "border"),
                _p("Cap-Haïtien", 19.76, -72.20, "port"),
                _p("Belladère", 18.86, -71.78, "border"),
            ),
            "PAP",
            "S.A.",
            False,
            "+509",
            "ht",
        ),
        Profile(
            "HN",
            "Honduras",
            "es",
            ("es_MX",),
            ("Policía Nacional de Honduras", "Dirección Policial de Investigaciones"),
            "Instituto Nacional de Migración",
            (
                _p("Tegucigalpa", 14.07, -87.19),
                _p("San Pedro Sula", 15.50, -88.03),
                _p("Trojes", 14.06, -85.98, "border"),
                _p("Agua Caliente", 14.43, -89.23, "border"),
            ),
            "SAP",
            "S. de R.L.",
            True,
            "+504",
            "hn",
        ),
        Profile(
            "JM",
            "Jamaica",
            "en",
            ("en_GB",),
            ("Jamaica Constabulary Force",),
            "Passport, Immigration and Citizenship Agency",
            (
                _p("Kingston", 17.97, -76.79, "port"),
                _p("Montego Bay", 18.47, -77.92, "port"),
                _p("Ocho Rios", 18.41, -77.10, "port"),
            ),
            "KIN",
            "Ltd.",
            False,
            "+1 876",
            "jm",
        ),
        Profile(
            "MX",
            "México",
            "es",
            ("es_MX",),
            ("Fiscalía General de la República", "Guardia Nacional"),
            "Instituto Nacional de Migración",
            (
                _p("Ciudad de México", 19.43, -99.13),
                _p("Tapachula", 14.90, -92.26, "border"),
                _p("Ciudad Juárez", 31.69, -106.42, "border"),
                _p("Tijuana", 32.51, -117.04, "border"),
                _p("Reynosa", 26.09, -98.28, "border"),
                _p("Ciudad Hidalgo", 14.68, -92.15, "border"),
            ),
            "MEX",
            "S.A. de C.V.",
            True,
            "+52",
            "mx",
        ),
        Profile(
            "PA",
            "Panamá",
            "es",
            ("es_CO",),
            ("Policía Nacional de Panamá", "Servicio Nacional de Fronteras"),
            "Servicio Nacional de Migración",
            (
                _p("Ciudad de Panamá", 8.98, -79.52),
                _p("Lajas Blancas", 8.28, -77.88, "transit"),
                _p("Bajo Chiquito", 8.07, -77.75, "transit"),
                _p("Paso Canoas", 8.53, -82.84, "border"),
                _p("Colón", 9.36, -79.90, "port"),
            ),
            "PTY",
            "S.A.",
            True,
            "+507",
            "pa",
        ),
        Profile(
            "PY",
            "Paraguay",
            "es",
            ("es_AR",),
            ("Policía Nacional del Paraguay",),
            "Dirección General de Migraciones",
            (
                _p("Asunción", -25.26, -57.58),
                _p("Ciudad del Este", -25.51, -54.61, "border"),
                _p("Encarnación", -27.33, -55.87, "border"),
                _p("Pedro Juan Caballero", -22.55, -55.73, "border"),
            ),
            "ASU",
            "S.A.",
            True,
            "+595",
            "py",
        ),
        Profile(
            "PE",
            "Perú",
            "es",
            ("es_CO",),
            ("Policía Nacional del Perú",),
            "Superintendencia Nacional de Migraciones",
            (
                _p("Lima", -12.05, -77.04),
                _p("Tumbes", -3.57, -80.45, "border"),
                _p("Tacna", -18.01, -70.25, "border"),
                _p("Iñapari", -10.95, -69.58, "border"),
            ),
            "LIM",
            "S.A.C.",
            True,
            "+51",
            "pe",
        ),
        Profile(
            "US",
            "United States",
            "en",
            ("en_US",),
            ("Homeland Security Investigations", "Federal Bureau of Investigation"),
            "U.S. Customs and Border Protection",
            (
                _p("El Paso", 31.76, -106.49, "border"),
                _p("San Diego", 32.72, -117.16, "border"),
                _p("McAllen", 26.20, -98.23, "border"),
                _p("Miami", 25.76, -80.19, "port"),
                _p("Houston", 29.76, -95.37),
            ),
            "MIA",
            "LLC",
            False,
            "+1",
            "us",
            national_id=False,
        ),
        Profile(
            "UY",
            "Uruguay",
            "es",
            ("es_AR",),
            ("Policía Nacional", "Dirección General de Represión al Tráfico Ilícito de Drogas"),
            "Dirección Nacional de Migración",
            (
                _p("Montevideo", -34.90, -56.16, "port"),
                _p("Rivera", -30.90, -55.55, "border"),
                _p("Chuy", -33.70, -53.46, "border"),
            ),
            "MVD",
            "S.A.",
            True,
            "+598",
            "uy",
        ),
    )
}

# Nationalities outside the Declaration's membership that are common on the region's routes.
# Persons may hold them; no state receives anything for them.
NON_MEMBERS: dict[str, tuple[str, str]] = {
    "VE": ("es_VE", "es"),
    "CU": ("es_ES", "es"),
    "NI": ("es_MX", "es"),
    "DO": ("es_ES", "es"),
    "CN": ("en_US", "en"),
    "IN": ("en_IN", "en"),
}

# Migration corridors (ISO codes in order of travel); notices draw routes and nationalities here.
CORRIDORS: tuple[tuple[str, ...], ...] = (
    ("VE", "CO", "PA", "CR", "NI", "HN", "GT", "MX", "US"),
    ("EC", "CO", "PA", "CR", "NI", "HN", "GT", "MX", "US"),
    ("HT", "BR", "PE", "EC", "CO", "PA", "CR", "NI", "HN", "GT", "MX", "US"),
    ("HN", "GT", "MX", "US"),
    ("SV", "GT", "MX", "US"),
    ("GT", "MX", "US"),
    ("CU", "NI", "HN", "GT", "MX", "US"),
    ("MX", "US", "CA"),
    ("VE", "CO", "EC", "PE", "CL"),
    ("VE", "BR", "AR"),
    ("PY", "AR", "UY"),
    ("CO", "PA", "CR"),
    ("JM", "US", "CA"),
    ("HT", "DO", "US"),
    ("BB", "US", "CA"),
    ("BZ", "MX", "US"),
    ("CN", "EC", "CO", "PA", "CR", "HN", "GT", "MX", "US"),
    ("IN", "BR", "PE", "EC", "CO", "PA", "MX", "US"),
)

_GENERIC_LOCALES = {"es": "es_ES", "en": "en_US", "pt": "pt_BR", "fr": "fr_FR"}


def profile(code: str, name: str | None = None, languages: tuple[str, ...] = ()) -> Profile:
    """The profile of a state; a generic one (from its languages) if none is written here."""
    if code in PROFILES:
        return PROFILES[code]
    language = next((lang for lang in languages if lang in _GENERIC_LOCALES), "en")
    return Profile(
        code,
        name or code,
        language,
        (_GENERIC_LOCALES[language],),
        ("National Police",) if language == "en" else ("Policía Nacional",),
        "Migration Authority" if language == "en" else "Autoridad Migratoria",
        (Place("Capital", None, None),),
        "XXX",
        national_id=False,
    )


def locale_of(nationality: str) -> tuple[str, str]:
    """(faker locale, language) for naming a national of ``nationality``."""
    if nationality in PROFILES:
        p = PROFILES[nationality]
        return p.locales[0], p.language
    return NON_MEMBERS.get(nationality, ("en_US", "en"))
