import Foundation

/// A hand-written, allocation-light parser for HTTP-date (RFC 9110 section 5.6.7).
///
/// Accepts the three formats recipients must accept:
/// - IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`
/// - obsolete RFC 850: `Sunday, 06-Nov-94 08:49:37 GMT` (a two-digit year more than 50 years in
///   the future of `now` is taken as the most recent past year with those digits)
/// - obsolete asctime: `Sun Nov  6 08:49:37 1994`
///
/// Leniencies: day and month names are case-insensitive, short or long day names are accepted in
/// any format, the weekday is not checked against the date, runs of spaces count as one, and a
/// one-digit day is accepted. Anything else is rejected with `nil`. No `DateFormatter` is involved,
/// so it is safe to call from any thread.
public enum HTTPDate {
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let shortDays: Set<String> = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    private static let longDays: Set<String> = [
        "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday",
    ]

    /// Parses an HTTP-date; `now` is only used to place RFC 850 two-digit years.
    public static func parse(_ value: some StringProtocol, now: Date) -> Date? {
        let tokens = value.split(separator: " ", omittingEmptySubsequences: true)
        let fields: Fields?
        switch tokens.count {
        case 6: fields = self.imfFixdate(tokens)
        case 4: fields = self.rfc850(tokens, now: now)
        case 5: fields = self.asctime(tokens)
        default: fields = nil
        }
        guard let fields, let seconds = fields.secondsSince1970 else { return nil }
        return Date(timeIntervalSince1970: TimeInterval(seconds))
    }

    private struct Fields {
        var year: Int
        var month: Int
        var day: Int
        var hour: Int
        var minute: Int
        var second: Int

        var secondsSince1970: Int? {
            guard (1...9999).contains(self.year), (1...12).contains(self.month),
                (1...HTTPDate.daysIn(month: self.month, year: self.year)).contains(self.day),
                (0...23).contains(self.hour), (0...59).contains(self.minute), (0...60).contains(self.second)
            else { return nil }
            let days = HTTPDate.daysFromCivil(year: self.year, month: self.month, day: self.day)
            return days * 86_400 + self.hour * 3_600 + self.minute * 60 + self.second
        }
    }

    // Sun, 06 Nov 1994 08:49:37 GMT
    private static func imfFixdate(_ tokens: [some StringProtocol]) -> Fields? {
        guard self.isDayName(tokens[0], withComma: true), self.isGMT(tokens[5]),
            let day = self.number(tokens[1], digits: 1...2),
            let month = self.month(tokens[2]),
            let year = self.number(tokens[3], digits: 4...4),
            let (hour, minute, second) = self.time(tokens[4])
        else { return nil }
        return Fields(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }

    // Sunday, 06-Nov-94 08:49:37 GMT
    private static func rfc850(_ tokens: [some StringProtocol], now: Date) -> Fields? {
        let date = tokens[1].split(separator: "-", omittingEmptySubsequences: false)
        guard self.isDayName(tokens[0], withComma: true), self.isGMT(tokens[3]), date.count == 3,
            let day = self.number(date[0], digits: 1...2),
            let month = self.month(date[1]),
            let rawYear = self.number(date[2], digits: 2...4), date[2].count != 3,
            let (hour, minute, second) = self.time(tokens[2])
        else { return nil }
        let year = date[2].count == 2 ? self.expandTwoDigitYear(rawYear, now: now) : rawYear
        return Fields(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }

    // Sun Nov  6 08:49:37 1994
    private static func asctime(_ tokens: [some StringProtocol]) -> Fields? {
        guard self.isDayName(tokens[0], withComma: false),
            let month = self.month(tokens[1]),
            let day = self.number(tokens[2], digits: 1...2),
            let (hour, minute, second) = self.time(tokens[3]),
            let year = self.number(tokens[4], digits: 4...4)
        else { return nil }
        return Fields(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
    }

    private static func isDayName(_ token: some StringProtocol, withComma: Bool) -> Bool {
        var name = token.lowercased()
        if withComma {
            guard name.hasSuffix(",") else { return false }
            name.removeLast()
        }
        return self.shortDays.contains(name) || self.longDays.contains(name)
    }

    private static func isGMT(_ token: some StringProtocol) -> Bool {
        token.lowercased() == "gmt"
    }

    private static func month(_ token: some StringProtocol) -> Int? {
        guard let index = self.months.firstIndex(of: token.lowercased()) else { return nil }
        return index + 1
    }

    /// `HH:MM:SS`, two digits each.
    private static func time(_ token: some StringProtocol) -> (Int, Int, Int)? {
        let parts = token.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3,
            let hour = self.number(parts[0], digits: 2...2),
            let minute = self.number(parts[1], digits: 2...2),
            let second = self.number(parts[2], digits: 2...2)
        else { return nil }
        return (hour, minute, second)
    }

    /// A run of ASCII digits whose length is in `digits`.
    private static func number(_ token: some StringProtocol, digits: ClosedRange<Int>) -> Int? {
        guard digits.contains(token.utf8.count) else { return nil }
        var value = 0
        for byte in token.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    private static func expandTwoDigitYear(_ twoDigits: Int, now: Date) -> Int {
        // Clamp so an absurd `now` cannot trap the Int conversion (±10 000 years is plenty).
        let rawDays = (now.timeIntervalSince1970 / 86_400).rounded(.down)
        let days = rawDays.isFinite ? Int(min(max(rawDays, -3_652_500), 3_652_500)) : 0
        let currentYear = self.civilYear(daysSince1970: days)
        var year = currentYear - currentYear % 100 + twoDigits
        if year > currentYear + 50 { year -= 100 }
        return year
    }

    package static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    package static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The Gregorian year of a day counted from 1970-01-01 (Howard Hinnant's `civil_from_days`).
    package static func civilYear(daysSince1970 days: Int) -> Int {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1_460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }
}
