import Foundation
import Testing

@testable import SidecarCore
@testable import SidecarPolicy

@Suite struct RetryAfterTests {
    /// Sun, 06 Nov 1994 08:49:37 GMT, the RFC's example date.
    let rfcExample = Date(timeIntervalSince1970: 784_111_777)
    /// Sat, 01 Mar 2025 12:00:00 GMT.
    let now2025 = Date(timeIntervalSince1970: 1_740_830_400)

    @Test func parsesDeltaSeconds() {
        #expect(RetryAfter.parse("120", now: self.now2025) == .seconds(120))
        #expect(RetryAfter.parse("0", now: self.now2025) == .zero)
        #expect(RetryAfter.parse("  7\t", now: self.now2025) == .seconds(7))
    }

    @Test func toleratesDecimalSeconds() {
        #expect(RetryAfter.parse("1.5", now: self.now2025) == .milliseconds(1_500))
        #expect(RetryAfter.parse("0.25", now: self.now2025) == .milliseconds(250))
    }

    @Test func negativeSecondsMeanNoWait() {
        #expect(RetryAfter.parse("-5", now: self.now2025) == .zero)
        #expect(RetryAfter.parse("-0.5", now: self.now2025) == .zero)
    }

    @Test func parsesIMFFixdate() {
        let now = self.rfcExample.addingTimeInterval(-90)
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == .seconds(90))
    }

    @Test func parsesObsoleteRFC850Date() {
        let now = self.rfcExample.addingTimeInterval(-90)
        #expect(RetryAfter.parse("Sunday, 06-Nov-94 08:49:37 GMT", now: now) == .seconds(90))
    }

    @Test func parsesObsoleteAsctimeDate() {
        let now = self.rfcExample.addingTimeInterval(-90)
        #expect(RetryAfter.parse("Sun Nov  6 08:49:37 1994", now: now) == .seconds(90))
        #expect(RetryAfter.parse("Sun Nov 6 08:49:37 1994", now: now) == .seconds(90))
    }

    @Test func keepsSubSecondPrecisionOfNow() {
        let now = self.rfcExample.addingTimeInterval(-1.25)
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == .milliseconds(1_250))
    }

    @Test func pastDateMeansNoWait() {
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: self.now2025) == .zero)
        #expect(RetryAfter.parse("Sun, 06 Nov 1994 08:49:37 GMT", now: self.rfcExample) == .zero)
    }

    @Test func clampsToMaximum() {
        #expect(RetryAfter.parse("3600", now: self.now2025, maximum: .seconds(60)) == .seconds(60))
        #expect(
            RetryAfter.parse("Sat, 01 Mar 2025 13:00:00 GMT", now: self.now2025, maximum: .seconds(60)) == .seconds(60)
        )
        #expect(RetryAfter.parse(String(repeating: "9", count: 400), now: self.now2025) == RetryAfter.defaultMaximum)
        #expect(RetryAfter.parse("59", now: self.now2025, maximum: .seconds(60)) == .seconds(59))
    }

    @Test func rejectsGarbage() {
        let garbage = [
            "", "   ", "soon", "1e3", "+5", "5s", "1.", ".5", "inf", "nan", "0x10", "1 2", "--1",
            "Sun, 06 Nov 1994 08:49:37 PST",  // not GMT
            "Sun, 32 Nov 1994 08:49:37 GMT",  // no 32nd
            "Sun, 31 Nov 1994 08:49:37 GMT",  // November has 30 days
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:60:00 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 94 08:49:37 GMT",
            "Funday, 06-Nov-94 08:49:37 GMT",
            "Sunday, 06-Nov-194 08:49:37 GMT",
            "Sunday 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37",
            "Sun Nov  6 08:49:37 94",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
        ]
        for value in garbage {
            #expect(RetryAfter.parse(value, now: self.now2025) == nil, "\(value)")
        }
    }

    @Test func acceptsLeapDayOnlyInLeapYears() {
        let now = Date(timeIntervalSince1970: 1_709_164_800 - 10)  // 10 s before 2024-02-29
        #expect(RetryAfter.parse("Thu, 29 Feb 2024 00:00:00 GMT", now: now) == .seconds(10))
        #expect(RetryAfter.parse("Wed, 29 Feb 2023 00:00:00 GMT", now: now) == nil)
        #expect(RetryAfter.parse("Tue, 29 Feb 2000 00:00:00 GMT", now: now) == .zero)
        #expect(RetryAfter.parse("Thu, 29 Feb 1900 00:00:00 GMT", now: now) == nil)
    }

    @Test func namesAreCaseInsensitive() {
        let now = self.rfcExample.addingTimeInterval(-1)
        #expect(RetryAfter.parse("sun, 06 nov 1994 08:49:37 gmt", now: now) == .seconds(1))
    }

    @Test func twoDigitYearsNearTheCenturyResolveToThePast() {
        // From 2025, "75" is 2075 (50 years ahead) but "76" would be 51 years ahead, so 1976.
        let in2075 = HTTPDate.parse("Tuesday, 01-Jan-75 00:00:00 GMT", now: self.now2025)
        let in1976 = HTTPDate.parse("Thursday, 01-Jan-76 00:00:00 GMT", now: self.now2025)
        #expect(in2075 == Date(timeIntervalSince1970: 3_313_526_400))
        #expect(in1976 == Date(timeIntervalSince1970: 189_302_400))
        #expect(HTTPDate.parse("Saturday, 01-Mar-25 12:00:00 GMT", now: self.now2025) == self.now2025)
    }

    @Test func parsesRetryAfterMilliseconds() {
        #expect(RetryAfter.parseMilliseconds("1500") == .milliseconds(1_500))
        #expect(RetryAfter.parseMilliseconds("20.5") == .microseconds(20_500))
        #expect(RetryAfter.parseMilliseconds("0") == .zero)
        #expect(RetryAfter.parseMilliseconds("-3") == .zero)
        #expect(RetryAfter.parseMilliseconds("90000", maximum: .seconds(30)) == .seconds(30))
        #expect(RetryAfter.parseMilliseconds("soon") == nil)
        #expect(RetryAfter.parseMilliseconds("") == nil)
        #expect(RetryAfter.parseMilliseconds("Sun, 06 Nov 1994 08:49:37 GMT") == nil)
    }

    @Test func acceptsSubstrings() {
        let header = "retry-after: 42"
        let value = header[header.index(header.startIndex, offsetBy: 12)...]
        #expect(RetryAfter.parse(value, now: self.now2025) == .seconds(42))
    }

    @Test func calendarHelpersMatchKnownDays() {
        #expect(HTTPDate.daysFromCivil(year: 1970, month: 1, day: 1) == 0)
        #expect(HTTPDate.daysFromCivil(year: 2000, month: 3, day: 1) == 11_017)
        #expect(HTTPDate.civilYear(daysSince1970: 0) == 1970)
        #expect(HTTPDate.civilYear(daysSince1970: -1) == 1969)
        #expect(HTTPDate.civilYear(daysSince1970: 20_148) == 2025)
    }
}
