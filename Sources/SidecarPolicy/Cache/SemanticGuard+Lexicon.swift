/// Hand-written word lists for `SemanticGuard`. Tokens are lowercased ASCII; see `SemanticGuard`.
///
/// Keep in step with the Python mirror in `scripts/tune-cache-guard`.
extension SemanticGuard {
    /// Function words: never content words, so they neither count as a substitution nor as a name.
    static let stopWords: Set<String> = words(
        """
        a an the and or nor but if then so of to in on at by for with from into onto over under about as
        is are was were be been being am do does did doing has have had having it its this that these those there here
        he she they we you i me him her them us my your his our their s re ll d ve m t st nd rd th very just also too
        some any all each both which who whom what when where why how while than out off up down will would can could
        should may might must shall through across around along near toward towards within between among upon via amid
        other another
        """
    )

    /// Words that negate; a `t` after one of `negatedStems` (`isn ' t`, `don't`) counts too.
    static let negations: Set<String> = words(
        """
        not no never none nobody nothing nowhere neither nor without cannot cant dont doesnt didnt isnt arent wasnt
        werent wont wouldnt shouldnt couldnt hasnt havent hadnt aint
        """
    )

    /// Stems left when `n't` is split off (`isn't` -> `isn`, `t`).
    static let negatedStems: Set<String> = words(
        "isn aren wasn weren don doesn didn won wouldn shouldn couldn can hasn haven hadn ain mustn needn shan"
    )

    /// Number words and their value (`one` is left out: "one man" and "a man" say the same).
    static let numberWords: [String: String] = [
        "zero": "0", "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8",
        "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
        "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
        "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
        "dozen": "12", "third": "3", "fourth": "4", "fifth": "5", "sixth": "6", "seventh": "7", "eighth": "8",
        "ninth": "9", "tenth": "10",
    ]

    /// Neither numbers nor content: `one` and magnitude words (`$250m` and `$250 million` agree).
    static let ignoredWords: Set<String> = words(
        "one hundred hundreds thousand thousands million millions billion billions trillion bn m k"
    )

    /// Compass compounds split into their parts, so `northwest` agrees with `north` and `west`.
    static let compounds: [String: [String]] = [
        "northwest": ["north", "west"], "northeast": ["north", "east"],
        "southwest": ["south", "west"], "southeast": ["south", "east"],
    ]

    /// Irregular forms mapped to one stem before suffix stripping.
    static let irregularForms: [String: String] = [
        "fell": "fall", "rode": "ride", "said": "say", "drove": "drive", "ran": "run", "took": "take",
        "made": "make", "went": "go", "ate": "eat", "sat": "sit", "stood": "stand", "wore": "wear", "held": "hold",
        "threw": "throw", "caught": "catch", "gave": "give", "got": "get", "told": "tell", "found": "find",
        "came": "come", "saw": "see", "lay": "lie", "men": "man", "women": "woman", "children": "child",
        "kids": "child", "kid": "child", "people": "person", "feet": "foot", "mice": "mouse", "teeth": "tooth",
        "grey": "gray",
    ]

    /// Contrast classes, one per line; `|` separates groups of words that mean the same here. A word in one
    /// text and a word of another group of the same class in the other (and not in the first) is a contrast.
    static let contrastClasses: [String] = [
        "monday|tuesday|wednesday|thursday|friday|saturday|sunday",
        "january jan|february feb|march mar|april apr|june jun|july jul|august aug|september sep sept"
            + "|october oct|november nov|december dec",
        "man men boy boys guy gentleman husband son father dad brother king male he him his"
            + "|woman women girl girls lady wife daughter mother mom sister queen female she her",
        "dog dogs puppy pup|cat cats kitten kitty|horse pony|cow cattle bull|sheep lamb|goat|pig|bird|fish"
            + "|mouse mice|rat|rabbit bunny|lion|tiger|bear|elephant|monkey|snake|duck|chicken hen rooster|deer|fox"
            + "|wolf|panda|zebra|giraffe|squirrel|turtle|frog|dolphin|shark|whale|camel|donkey|hamster|parrot|owl"
            + "|eagle|ferret",
        "guitar|piano keyboard|violin fiddle|drum drums|flute|trumpet|saxophone sax|cello|harp|banjo|harmonica"
            + "|clarinet|trombone|ukulele",
        "red|blue|green|yellow|black|white|brown|orange|purple|pink|gray grey",
        "up higher high rise rose risen gain gains increase raise raised strengthen climb jump soar boost more most"
            + " grow|down lower low fall fell fallen drop decline decrease lose lost loss losses weaken slide slip dip"
            + " sink plunge tumble less least fewer shrink",
        "better best good great|worse worst bad poor",
        "open opens opened start begin|close closes closed end ends shut finish",
        "north northern|south southern|east eastern|west western",
        "left|right",
        "before earlier prior ahead|after later since",
        "buy buys bought|sell sells sold",
        "win wins won beat beats|lose loses defeat",
        "acquit acquitted|convict convicted",
        "what which|why|how|when|where|who whom whose",
    ]

    /// Words that may not serve as the fixed middle of a swap ("brown and white" / "white and brown").
    static let nonPivots: Set<String> = words("and or nor a an the both either")

    /// Word to (class, group) for `contrastClasses`.
    static let contrastGroups: [String: ContrastGroup] = {
        var table: [String: ContrastGroup] = [:]
        for (classIndex, line) in contrastClasses.enumerated() {
            for (groupIndex, group) in line.split(separator: "|").enumerated() {
                for word in group.split(separator: " ") {
                    table[String(word)] = ContrastGroup(contrastClass: classIndex, group: groupIndex)
                }
            }
        }
        return table
    }()

    private static func words(_ text: String) -> Set<String> {
        Set(text.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
    }
}

/// A group within a contrast class of `SemanticGuard.contrastClasses`.
struct ContrastGroup: Hashable, Sendable {
    var contrastClass: Int
    var group: Int
}
