package graphgen

// The vocabulary of the generated web. Lists are fixed: changing one changes
// every graph a seed produces.

// lang is the language of a site's titles, navigation and anchors.
type lang uint8

const (
	langEN lang = iota
	langDE
	langFR
	langES
	langJA
	langRU
	numLangs
)

// langCodes are the PageResult.Lang values.
var langCodes = [numLangs]string{"en", "de", "fr", "es", "ja", "ru"}

// words are the English content words; slugs are built from them, so they
// are lowercase ASCII without '-'. 256 of them: three make a bijective
// 24-bit page identifier (see slugWords).
var words = [256]string{
	"garden", "river", "secret", "guide", "best", "review", "city", "travel",
	"coffee", "recipe", "summer", "winter", "market", "design", "house", "money",
	"health", "music", "video", "photo", "family", "school", "study", "career",
	"energy", "solar", "power", "water", "forest", "mountain", "ocean", "island",
	"bread", "cheese", "pasta", "salad", "chicken", "vegan", "diet", "fitness",
	"running", "cycling", "football", "tennis", "golf", "chess", "poker", "games",
	"laptop", "phone", "camera", "printer", "router", "server", "cloud", "linux",
	"python", "golang", "rust", "java", "database", "security", "privacy", "network",
	"startup", "finance", "stock", "crypto", "bank", "loan", "insurance", "mortgage",
	"wedding", "baby", "puppy", "kitten", "horse", "bird", "fishing", "hunting",
	"camping", "hiking", "beach", "hotel", "flight", "train", "car", "bike",
	"electric", "battery", "repair", "tools", "kitchen", "bathroom", "bedroom", "office",
	"paint", "wood", "metal", "glass", "paper", "plastic", "cotton", "leather",
	"shoes", "jacket", "dress", "shirt", "watch", "jewelry", "beauty", "skin",
	"hair", "makeup", "perfume", "yoga", "sleep", "stress", "doctor", "dental",
	"history", "science", "space", "planet", "moon", "star", "physics", "chemistry",
	"biology", "math", "language", "english", "spanish", "german", "french", "japan",
	"europe", "america", "africa", "asia", "london", "paris", "berlin", "tokyo",
	"movie", "series", "book", "novel", "poetry", "art", "museum", "theater",
	"guitar", "piano", "drums", "concert", "festival", "party", "gift", "holiday",
	"christmas", "easter", "spring", "autumn", "weather", "climate", "storm", "rain",
	"tips", "tricks", "ideas", "hacks", "mistakes", "lessons", "steps", "ways",
	"simple", "easy", "quick", "cheap", "free", "new", "old", "modern",
	"classic", "vintage", "green", "red", "blue", "black", "white", "golden",
	"small", "big", "tiny", "giant", "smart", "wild", "urban", "rural",
	"local", "global", "daily", "weekly", "annual", "future", "past", "present",
	"update", "release", "launch", "news", "report", "analysis", "opinion", "interview",
	"podcast", "webinar", "course", "tutorial", "workshop", "template", "checklist", "toolkit",
	"plugin", "theme", "widget", "app", "software", "hardware", "device", "gadget",
	"robot", "drone", "sensor", "chip", "code", "api", "data", "model",
	"vision", "voice", "search", "email", "social", "media", "brand", "store",
	"shop", "deal", "sale", "price", "budget", "luxury", "premium", "basic",
}

// nativeWords are title and anchor words of the other languages, with
// non-ASCII letters on purpose.
var nativeWords = [numLangs][]string{
	langEN: nil,
	langDE: {"Größe", "Übersicht", "Straße", "Brötchen", "Fahrrad", "Garten", "Küche", "Urlaub",
		"Wetter", "Nachrichten", "Angebot", "Gemüse", "Bücher", "Fußball", "Gesundheit", "Wohnung",
		"günstig", "schön", "neue", "beste", "für", "über", "mit", "und", "Tipps", "Anleitung",
		"Vergleich", "Test", "Erfahrungen", "Schlüssel", "Zürich", "München"},
	langFR: {"été", "hiver", "cuisine", "recette", "voyage", "maison", "jardin", "santé",
		"économie", "actualités", "élève", "café", "crème", "fenêtre", "forêt", "château",
		"meilleur", "nouveau", "guide", "conseils", "à", "pour", "avec", "et", "les", "des",
		"français", "Genève", "Montréal", "première"},
	langES: {"cocina", "receta", "viaje", "casa", "jardín", "salud", "economía", "noticias",
		"niño", "año", "mañana", "canción", "fútbol", "música", "teléfono", "ciudad",
		"mejor", "nuevo", "guía", "consejos", "para", "con", "y", "los", "las", "España"},
	langJA: {"東京", "大阪", "料理", "旅行", "ニュース", "天気", "健康", "音楽",
		"映画", "写真", "カメラ", "ラーメン", "寿司", "温泉", "桜", "猫",
		"おすすめ", "ランキング", "比較", "レビュー", "まとめ", "方法", "初心者", "最新"},
	langRU: {"новости", "погода", "москва", "кухня", "рецепт", "путешествие", "дом", "сад",
		"здоровье", "музыка", "кино", "фото", "лучший", "новый", "обзор", "советы",
		"для", "и", "в", "как", "цена", "купить", "отзывы", "Санкт-Петербург"},
}

// navSlot is one navigation page: its path slug and its link text per
// language.
type navSlot struct {
	slug   string
	anchor [numLangs]string
}

// navSlots are the navigation pages of a site (page ids 1..navN-1).
var navSlots = []navSlot{
	{"about", [numLangs]string{"About us", "Über uns", "À propos", "Sobre nosotros", "会社概要", "О компании"}},
	{"contact", [numLangs]string{"Contact", "Kontakt", "Contact", "Contacto", "お問い合わせ", "Контакты"}},
	{"blog", [numLangs]string{"Blog", "Blog", "Blog", "Blog", "ブログ", "Блог"}},
	{"news", [numLangs]string{"News", "Aktuelles", "Actualités", "Noticias", "ニュース", "Новости"}},
	{"products", [numLangs]string{"Products", "Produkte", "Produits", "Productos", "製品情報", "Каталог"}},
	{"services", [numLangs]string{"Services", "Leistungen", "Services", "Servicios", "サービス", "Услуги"}},
	{"privacy-policy", [numLangs]string{"Privacy Policy", "Datenschutz", "Confidentialité", "Privacidad", "プライバシーポリシー", "Политика конфиденциальности"}},
	{"terms", [numLangs]string{"Terms of Service", "AGB", "Mentions légales", "Términos y condiciones", "利用規約", "Условия использования"}},
	{"faq", [numLangs]string{"FAQ", "Häufige Fragen", "FAQ", "Preguntas frecuentes", "よくある質問", "Вопросы и ответы"}},
	{"careers", [numLangs]string{"Careers", "Karriere", "Carrières", "Empleo", "採用情報", "Вакансии"}},
	{"login", [numLangs]string{"Log in", "Anmelden", "Connexion", "Iniciar sesión", "ログイン", "Войти"}},
	{"register", [numLangs]string{"Sign up", "Registrieren", "S'inscrire", "Registrarse", "新規登録", "Регистрация"}},
	{"cart", [numLangs]string{"Cart", "Warenkorb", "Panier", "Carrito", "カート", "Корзина"}},
	{"search", [numLangs]string{"Search", "Suche", "Rechercher", "Buscar", "検索", "Поиск"}},
	{"sitemap", [numLangs]string{"Sitemap", "Sitemap", "Plan du site", "Mapa del sitio", "サイトマップ", "Карта сайта"}},
	{"imprint", [numLangs]string{"Imprint", "Impressum", "Mentions légales", "Aviso legal", "運営者情報", "Реквизиты"}},
	{"pricing", [numLangs]string{"Pricing", "Preise", "Tarifs", "Precios", "料金", "Цены"}},
	{"support", [numLangs]string{"Help & Support", "Hilfe", "Aide", "Ayuda", "サポート", "Поддержка"}},
	{"shipping", [numLangs]string{"Shipping", "Versand", "Livraison", "Envíos", "配送について", "Доставка"}},
}

// homeAnchors are the link texts of the home link per language.
var homeAnchors = [numLangs]string{"Home", "Startseite", "Accueil", "Inicio", "ホーム", "Главная"}

// readMore are "read more" links per language.
var readMore = [numLangs][]string{
	langEN: {"Read more", "Read more »", "Continue reading →", "more…", "Learn more", "Full story"},
	langDE: {"Weiterlesen", "Mehr erfahren", "mehr…", "Weiterlesen »"},
	langFR: {"Lire la suite", "En savoir plus", "Lire plus »"},
	langES: {"Leer más", "Más información", "Seguir leyendo →"},
	langJA: {"続きを読む", "詳しくはこちら", "もっと見る"},
	langRU: {"Читать далее", "Подробнее", "Читать полностью →"},
}

// clickHere are the anchors SEO people complain about.
var clickHere = []string{"click here", "here", "Click here", "this", "this article", "link",
	"source", "website", "this post", "[source]", "via", "see more", "Visit site", "Download", "Official website"}

// pager are pagination anchors.
var pager = []string{"Next »", "« Previous", "2", "3", "4", "Next page", "Older posts", "Newer posts"}

// brandSyllables build brand names; every brand is 2 or 3 of them.
var brandSyllables = []string{
	"ko", "va", "lin", "tra", "mex", "zor", "bel", "qui", "sta", "nor", "dex", "pli",
	"ru", "ma", "ton", "vex", "sol", "gri", "fa", "lu", "pen", "tor", "ki", "zen",
	"ar", "bo", "cal", "dri", "ex", "fin", "go", "hub", "io", "jet", "kor", "lex",
	"mo", "nex", "on", "pix", "quo", "ri", "sky", "tek", "um", "vi", "wo", "xa",
}

// tld is a public suffix with its share of registrable domains and the
// language of sites under it.
type tld struct {
	suffix string
	weight int
	lang   lang
}

var tlds = []tld{
	{"com", 440, langEN}, {"org", 80, langEN}, {"net", 70, langEN}, {"de", 80, langDE},
	{"co.uk", 60, langEN}, {"fr", 40, langFR}, {"io", 30, langEN}, {"nl", 25, langEN},
	{"ru", 30, langRU}, {"jp", 20, langJA}, {"co.jp", 10, langJA}, {"com.au", 20, langEN},
	{"es", 20, langES}, {"it", 15, langEN}, {"info", 10, langEN}, {"edu", 10, langEN},
	{"ca", 10, langEN}, {"ch", 10, langDE}, {"com.br", 10, langES},
}

// subdomainNames are the extra hosts of a multi-host domain.
var subdomainNames = []string{"blog", "shop", "news", "support", "docs", "m", "en", "de", "fr",
	"forum", "help", "community", "store", "careers", "investors", "developer", "status", "app"}

// newsSections and corpSections are the first path segment of those styles.
var (
	newsSections = []string{"world", "politics", "business", "tech", "sport", "culture", "science", "opinion", "local", "travel"}
	corpSections = []string{"solutions", "products", "resources", "insights", "case-studies", "events", "partners", "industries"}
)
