"""Free text for synthetic notices (summaries, remarks, aliases) in the origin's language."""

from __future__ import annotations

SUMMARIES: dict[str, dict[str, tuple[str, ...]]] = {
    "es": {
        "MIGRANT_SMUGGLING": (
            "Red de tráfico ilícito de migrantes que traslada grupos de {n} a {m} personas desde "
            "{a} hasta {b} en {mode}; cobra entre {fee} USD por persona y utiliza casas de "
            "seguridad cerca de {a}.",
            "Se detectó un grupo de {m} migrantes ocultos en {mode} interceptado en {a}; los "
            "conductores declararon trabajar para una organización con base en {b}.",
        ),
        "TRAFFICKING_IN_PERSONS": (
            "Posible trata de personas con fines de explotación laboral y sexual: víctimas "
            "captadas en {b} con ofertas de empleo falsas y trasladadas a {a}, donde se les "
            "retienen los documentos.",
            "Investigación por trata de personas: {n} víctimas identificadas en un local de {a}; "
            "los captadores operan en redes sociales desde {b}.",
        ),
        "DOCUMENT_FRAUD": (
            "Pasaportes y visados falsificados de alta calidad entregados a migrantes en {a} para "
            "abordar vuelos hacia {b}; se incautaron {m} documentos.",
        ),
        "MONEY_LAUNDERING": (
            "Flujos financieros de una red de tráfico de migrantes: pagos fraccionados mediante "
            "remesas y billeteras de criptoactivos entre {a} y {b}, por un total estimado de "
            "{fee}000 USD.",
        ),
        "OTHER": (
            "Información sobre una estructura criminal que facilita el ingreso irregular por "
            "{a} con apoyo de funcionarios locales; se solicita cotejo con registros de {b}.",
        ),
    },
    "en": {
        "MIGRANT_SMUGGLING": (
            "Smuggling network moving groups of {n} to {m} people from {a} to {b} by {mode}; "
            "fees of {fee} USD per person, stash houses near {a}.",
            "Group of {m} migrants found concealed in a {mode} stopped near {a}; drivers say "
            "they were hired by an organisation based in {b}.",
        ),
        "TRAFFICKING_IN_PERSONS": (
            "Suspected trafficking in persons for labour and sexual exploitation: victims "
            "recruited in {b} with false job offers and moved to {a}, where their documents "
            "were withheld.",
            "Trafficking investigation: {n} victims identified at premises in {a}; recruiters "
            "advertise on social media from {b}.",
        ),
        "DOCUMENT_FRAUD": (
            "High-quality counterfeit passports and visas supplied to migrants in {a} to board "
            "flights to {b}; {m} documents seized.",
        ),
        "MONEY_LAUNDERING": (
            "Financial flows of a smuggling network: structured payments through remittances "
            "and crypto wallets between {a} and {b}, estimated at {fee}000 USD.",
        ),
        "OTHER": (
            "Information on a criminal structure facilitating irregular entry through {a} with "
            "help from local officials; cross-check with records in {b} requested.",
        ),
    },
    "pt": {
        "MIGRANT_SMUGGLING": (
            "Rede de contrabando de migrantes que transporta grupos de {n} a {m} pessoas de {a} "
            "até {b} em {mode}; cobra {fee} USD por pessoa e usa casas de apoio perto de {a}.",
        ),
        "TRAFFICKING_IN_PERSONS": (
            "Suspeita de tráfico de pessoas para exploração laboral: vítimas aliciadas em {b} "
            "com falsas ofertas de emprego e levadas para {a}, onde tiveram os documentos "
            "retidos.",
        ),
        "DOCUMENT_FRAUD": (
            "Passaportes e vistos falsificados fornecidos a migrantes em {a} para embarque em "
            "voos para {b}; {m} documentos apreendidos.",
        ),
        "MONEY_LAUNDERING": (
            "Fluxos financeiros de uma rede de contrabando de migrantes: pagamentos fracionados "
            "por remessas e carteiras de criptoativos entre {a} e {b}.",
        ),
        "OTHER": (
            "Informação sobre estrutura criminosa que facilita a entrada irregular por {a}; "
            "solicita-se cruzamento com registros de {b}.",
        ),
    },
    "fr": {
        "MIGRANT_SMUGGLING": (
            "Réseau de trafic de migrants transportant des groupes de {n} à {m} personnes de "
            "{a} vers {b} en {mode}; {fee} USD par personne, maisons de transit près de {a}.",
        ),
        "TRAFFICKING_IN_PERSONS": (
            "Traite des personnes présumée à des fins d'exploitation: victimes recrutées à {b} "
            "par de fausses offres d'emploi et conduites à {a}, documents confisqués.",
        ),
        "DOCUMENT_FRAUD": (
            "Passeports et visas contrefaits remis à des migrants à {a} pour embarquer vers "
            "{b}; {m} documents saisis.",
        ),
        "MONEY_LAUNDERING": (
            "Flux financiers d'un réseau de trafic de migrants: paiements fractionnés par "
            "transferts d'argent et portefeuilles de cryptoactifs entre {a} et {b}.",
        ),
        "OTHER": (
            "Informations sur une structure criminelle facilitant l'entrée irrégulière par {a}; "
            "vérification demandée auprès de {b}.",
        ),
    },
}

FOLLOW_UPS = {
    "es": (
        "Se solicita a las autoridades de {b} verificar identidades, antecedentes y movimientos "
        "migratorios de las personas señaladas.",
        "La investigación continúa; se comparte para cotejo con casos abiertos en {b}.",
    ),
    "en": (
        "Authorities in {b} are asked to check identities, records and travel history of the "
        "persons named.",
        "The investigation is ongoing; shared for comparison with open cases in {b}.",
    ),
    "pt": (
        "Solicita-se às autoridades de {b} verificar identidades, antecedentes e movimentos "
        "migratórios das pessoas indicadas.",
    ),
    "fr": (
        "Les autorités de {b} sont priées de vérifier les identités, antécédents et "
        "déplacements des personnes citées.",
    ),
}

MODES = {
    "es": ("autobús", "camión de carga", "lancha", "vehículo particular", "a pie y en lancha"),
    "en": ("bus", "tractor-trailer", "boat", "private car", "on foot and by boat"),
    "pt": ("ônibus", "caminhão", "barco", "carro particular", "a pé e de barco"),
    "fr": ("bus", "camion", "bateau", "voiture", "à pied et en bateau"),
}

ALIASES = {
    "es": ("El Flaco", "La Güera", "El Chino", "El Primo", "La Jefa", "El Coyote", "Tío"),
    "en": ("Shorty", "Big Man", "Doc", "Captain", "Boss"),
    "pt": ("Magrão", "Baixinho", "Doutor", "Chefe"),
    "fr": ("Ti Blanc", "Le Capitaine", "Patron", "Ti Paul"),
}

H3_CONDITIONS = {
    "es": "No compartir con autoridades municipales; consultar antes de cualquier detención.",
    "en": "Not to be shared with municipal authorities; consult before any arrest.",
    "pt": "Não compartilhar com autoridades municipais; consultar antes de qualquer prisão.",
    "fr": "Ne pas partager avec les autorités municipales; consulter avant toute arrestation.",
}

REMARKS = {
    "ARREST": {
        "es": "Detenido por presunta participación en tráfico de migrantes; audiencia prevista.",
        "en": "Arrested on suspicion of migrant smuggling; first hearing scheduled.",
        "pt": "Preso por suspeita de contrabando de migrantes; audiência marcada.",
        "fr": "Arrêté pour trafic de migrants présumé; audience prévue.",
    },
    "DETENTION": {
        "es": "En estación migratoria por situación migratoria irregular.",
        "en": "Held in immigration detention for irregular status.",
        "pt": "Retido em centro de migração por situação irregular.",
        "fr": "Placé en rétention administrative pour séjour irrégulier.",
    },
    "DEATH": {
        "es": "Fallecimiento; restos bajo custodia del servicio médico forense.",
        "en": "Death; remains in the custody of the medical examiner.",
        "pt": "Óbito; corpo sob custódia do instituto médico legal.",
        "fr": "Décès; dépouille confiée à l'institut médico-légal.",
    },
    "SERIOUS_INJURY": {
        "es": "Lesiones graves en accidente de tránsito de un vehículo con migrantes.",
        "en": "Serious injuries in a road accident of a vehicle carrying migrants.",
        "pt": "Ferimentos graves em acidente de veículo com migrantes.",
        "fr": "Blessures graves dans un accident d'un véhicule transportant des migrants.",
    },
    "HOSPITALISATION": {
        "es": "Hospitalizado por deshidratación tras cruce fronterizo.",
        "en": "Hospitalised for dehydration after a border crossing.",
        "pt": "Hospitalizado por desidratação após travessia de fronteira.",
        "fr": "Hospitalisé pour déshydratation après le passage de la frontière.",
    },
    "GUARDIANSHIP_OF_MINOR": {
        "es": "Menor no acompañado bajo tutela del sistema de protección de la infancia.",
        "en": "Unaccompanied child placed under the guardianship of child-protection services.",
        "pt": "Criança desacompanhada sob tutela do conselho tutelar.",
        "fr": "Mineur non accompagné placé sous la tutelle de la protection de l'enfance.",
    },
    "REMOVAL_OR_RETURN": {
        "es": "Retorno asistido programado; se solicita recepción consular en destino.",
        "en": "Assisted return scheduled; consular reception at destination requested.",
        "pt": "Retorno assistido agendado; solicita-se recepção consular no destino.",
        "fr": "Retour assisté programmé; accueil consulaire à destination demandé.",
    },
    "RELEASE": {
        "es": "Puesto en libertad con medidas cautelares.",
        "en": "Released on bail with reporting conditions.",
        "pt": "Posto em liberdade com medidas cautelares.",
        "fr": "Remis en liberté sous contrôle judiciaire.",
    },
    "OTHER": {
        "es": "Comunicación consular general.",
        "en": "General consular communication.",
        "pt": "Comunicação consular geral.",
        "fr": "Communication consulaire générale.",
    },
}

FACILITIES = {
    "ARREST": {
        "es": "Agencia del Ministerio Público",
        "en": "County Detention Center",
        "pt": "Superintendência Regional",
        "fr": "Commissariat central",
    },
    "DETENTION": {
        "es": "Estación Migratoria",
        "en": "Service Processing Center",
        "pt": "Centro de Triagem",
        "fr": "Centre de rétention",
    },
    "DEATH": {
        "es": "Servicio Médico Forense",
        "en": "Office of the Medical Examiner",
        "pt": "Instituto Médico Legal",
        "fr": "Institut médico-légal",
    },
    "SERIOUS_INJURY": {
        "es": "Hospital General",
        "en": "General Hospital",
        "pt": "Hospital Geral",
        "fr": "Hôpital général",
    },
    "HOSPITALISATION": {
        "es": "Hospital General",
        "en": "Regional Medical Center",
        "pt": "Hospital Regional",
        "fr": "Hôpital universitaire",
    },
    "GUARDIANSHIP_OF_MINOR": {
        "es": "Centro de Asistencia Social",
        "en": "Shelter for Children",
        "pt": "Abrigo Institucional",
        "fr": "Foyer de l'enfance",
    },
}

POST = {
    "es": "Consulado de {country} en {city}",
    "en": "Consulate of {country} in {city}",
    "pt": "Consulado do {country} em {city}",
    "fr": "Consulat d'{country} à {city}",
}

CARRIERS = ("Charter", "Avianca", "Copa Airlines", "Aeroméxico", "LATAM", "Volaris", "Bus")
