//! The sun and a rooftop PV system: solar position, clear-sky irradiance, transposition.
//!
//! - Solar position: NOAA's "General Solar Position Calculations" (the Fourier series of
//!   J. W. Spencer, "Fourier series representation of the position of the sun", Search 2(5),
//!   1971, for the declination and the equation of time); accurate to a fraction of a degree.
//! - Extraterrestrial irradiance: Spencer's series for the Sun–Earth distance, solar constant
//!   1361 W/m² (Kopp and Lean, 2011).
//! - Clear-sky global horizontal irradiance: Haurwitz (1945),
//!   `GHI = 1098 · cos z · exp(-0.059 / cos z)` W/m².
//! - Direct and diffuse parts of a (cloudy) GHI: the diffuse fraction of Erbs, Klein and
//!   Duffie (Solar Energy 28, 1982) as a function of the clearness index.
//! - Plane of array: beam on the tilted plane plus the isotropic-sky diffuse of Liu and Jordan
//!   (1963) plus ground reflection with albedo 0.2.

use crate::PvSystem;
use std::f64::consts::TAU;

/// Solar constant in W/m².
const SOLAR_CONSTANT: f64 = 1361.0;
/// Ground reflectance for the reflected part of the plane-of-array irradiance.
const ALBEDO: f64 = 0.2;
/// Below this cosine of the zenith angle the beam is not resolved (the sun within 3.7° of the
/// horizon); what little light there is counts as diffuse.
const MIN_COS_ZENITH: f64 = 0.065;

/// The sun seen from the site at one instant.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sun {
    /// Cosine of the zenith angle; ≤ 0 when the sun is below the horizon.
    pub(crate) cos_zenith: f64,
    /// Degrees clockwise from north (180 = south).
    pub(crate) azimuth_deg: f64,
    /// Extraterrestrial irradiance normal to the sun's rays, W/m².
    pub(crate) extraterrestrial: f64,
}

/// Day angle γ of NOAA's formulas at `utc_ms`, radians.
fn day_angle(utc_ms: i64) -> (f64, f64) {
    let day = crate::calendar::LocalDay::containing(utc_ms, 0);
    let hour = utc_ms.rem_euclid(crate::calendar::DAY_MS) as f64 / 3_600_000.0;
    let gamma = TAU / f64::from(day.days_in_year)
        * (f64::from(day.day_of_year) - 1.0 + (hour - 12.0) / 24.0);
    (gamma, hour)
}

/// Equation of time in minutes and declination in radians for day angle `gamma`.
fn equation_of_time_and_declination(gamma: f64) -> (f64, f64) {
    let (sin1, cos1) = gamma.sin_cos();
    let (sin2, cos2) = (2.0 * gamma).sin_cos();
    let (sin3, cos3) = (3.0 * gamma).sin_cos();
    let equation_of_time =
        229.18 * (0.000075 + 0.001868 * cos1 - 0.032077 * sin1 - 0.014615 * cos2 - 0.040849 * sin2);
    let declination = 0.006918 - 0.399912 * cos1 + 0.070257 * sin1 - 0.006758 * cos2
        + 0.000907 * sin2
        - 0.002697 * cos3
        + 0.00148 * sin3;
    (equation_of_time, declination)
}

/// The sun's position at `utc_ms` for a site at `latitude_deg` north, `longitude_deg` east.
pub(crate) fn sun(latitude_deg: f64, longitude_deg: f64, utc_ms: i64) -> Sun {
    let (gamma, hour) = day_angle(utc_ms);
    let (equation_of_time, declination) = equation_of_time_and_declination(gamma);
    let true_solar_minutes = hour * 60.0 + equation_of_time + 4.0 * longitude_deg;
    let hour_angle = (true_solar_minutes / 4.0 - 180.0).to_radians();
    let latitude = latitude_deg.to_radians();
    let cos_zenith =
        latitude.sin() * declination.sin() + latitude.cos() * declination.cos() * hour_angle.cos();
    // Azimuth from south, positive towards west, then turned to "from north, clockwise".
    let from_south = hour_angle
        .sin()
        .atan2(hour_angle.cos() * latitude.sin() - declination.tan() * latitude.cos());
    let azimuth_deg = (from_south.to_degrees() + 180.0).rem_euclid(360.0);
    let distance = 1.000110
        + 0.034221 * gamma.cos()
        + 0.001280 * gamma.sin()
        + 0.000719 * (2.0 * gamma).cos()
        + 0.000077 * (2.0 * gamma).sin();
    Sun { cos_zenith, azimuth_deg, extraterrestrial: SOLAR_CONSTANT * distance }
}

#[cfg(test)]
/// Solar noon (the sun due south or north) of the UTC day that contains `utc_ms`, as UTC ms.
pub(crate) fn solar_noon_ms(longitude_deg: f64, utc_ms: i64) -> i64 {
    let midnight = utc_ms.div_euclid(crate::calendar::DAY_MS) * crate::calendar::DAY_MS;
    let (gamma, _) = day_angle(midnight + 43_200_000);
    let (equation_of_time, _) = equation_of_time_and_declination(gamma);
    midnight + ((720.0 - 4.0 * longitude_deg - equation_of_time) * 60_000.0).round() as i64
}

/// Haurwitz clear-sky global horizontal irradiance, W/m² (0 with the sun below the horizon).
pub(crate) fn clear_sky_ghi(sun: &Sun) -> f64 {
    if sun.cos_zenith <= 0.0 {
        return 0.0;
    }
    1098.0 * sun.cos_zenith * (-0.059 / sun.cos_zenith).exp()
}

/// Erbs et al.'s diffuse fraction of GHI for clearness index `kt`.
fn erbs_diffuse_fraction(kt: f64) -> f64 {
    if kt <= 0.22 {
        1.0 - 0.09 * kt
    } else if kt <= 0.80 {
        0.9511 - 0.1604 * kt + 4.388 * kt.powi(2) - 16.638 * kt.powi(3) + 12.336 * kt.powi(4)
    } else {
        0.165
    }
}

/// Irradiance on the plane of `pv` (W/m²) from global horizontal irradiance `ghi`.
pub(crate) fn plane_of_array(sun: &Sun, ghi: f64, pv: &PvSystem) -> f64 {
    if sun.cos_zenith <= 0.0 || ghi <= 0.0 {
        return 0.0;
    }
    let horizontal_extraterrestrial = sun.extraterrestrial * sun.cos_zenith.max(MIN_COS_ZENITH);
    let clearness = (ghi / horizontal_extraterrestrial).clamp(0.0, 1.0);
    let diffuse =
        if sun.cos_zenith < MIN_COS_ZENITH { ghi } else { ghi * erbs_diffuse_fraction(clearness) };
    let beam_normal =
        ((ghi - diffuse) / sun.cos_zenith.max(MIN_COS_ZENITH)).min(sun.extraterrestrial);
    let tilt = pv.tilt_deg.to_radians();
    let sin_zenith = (1.0 - sun.cos_zenith.powi(2)).max(0.0).sqrt();
    let cos_incidence = sun.cos_zenith * tilt.cos()
        + sin_zenith * tilt.sin() * (sun.azimuth_deg - pv.azimuth_deg).to_radians().cos();
    let beam = beam_normal * cos_incidence.max(0.0);
    let sky = diffuse * (1.0 + tilt.cos()) / 2.0;
    let ground = ghi * ALBEDO * (1.0 - tilt.cos()) / 2.0;
    beam + sky + ground
}

/// AC power of `pv` in W at `utc_ms` with clear-sky index `clear_sky_index` (1 = clear):
/// `kWp · POA / (1000 W/m²) · PR · 1000`.
pub(crate) fn pv_power_w(
    latitude_deg: f64,
    longitude_deg: f64,
    pv: &PvSystem,
    utc_ms: i64,
    clear_sky_index: f64,
) -> f64 {
    let sun = sun(latitude_deg, longitude_deg, utc_ms);
    let ghi = clear_sky_ghi(&sun) * clear_sky_index;
    pv.kwp * plane_of_array(&sun, ghi, pv) * pv.performance_ratio
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRANKFURT: (f64, f64) = (50.11, 8.68);
    /// 2025-06-21T00:00Z and 2025-12-21T00:00Z.
    const JUNE_21: i64 = 1_750_464_000_000;
    const DECEMBER_21: i64 = 1_766_275_200_000;

    #[test]
    fn the_sun_is_where_the_almanac_says() {
        // Summer solstice at 50.11° N: noon elevation 90 - 50.11 + 23.44 = 63.3°.
        let noon = solar_noon_ms(FRANKFURT.1, JUNE_21);
        let at_noon = sun(FRANKFURT.0, FRANKFURT.1, noon);
        let elevation = 90.0 - at_noon.cos_zenith.acos().to_degrees();
        assert!((elevation - 63.3).abs() < 0.3, "elevation {elevation}");
        assert!((at_noon.azimuth_deg - 180.0).abs() < 1.0, "azimuth {}", at_noon.azimuth_deg);
        // Solar noon at 8.68° E is about 11:25 UTC in June (equation of time ≈ -1.7 min).
        let noon_minutes = (noon - JUNE_21) as f64 / 60_000.0;
        assert!((noon_minutes - 687.0).abs() < 3.0, "solar noon {noon_minutes}");
        // Morning sun in the east, evening sun in the west, night below the horizon.
        let morning = sun(FRANKFURT.0, FRANKFURT.1, noon - 4 * 3_600_000);
        assert!(morning.azimuth_deg < 120.0 && morning.azimuth_deg > 60.0);
        let evening = sun(FRANKFURT.0, FRANKFURT.1, noon + 4 * 3_600_000);
        assert!(evening.azimuth_deg > 240.0 && evening.azimuth_deg < 300.0);
        assert!(sun(FRANKFURT.0, FRANKFURT.1, noon + 12 * 3_600_000).cos_zenith < 0.0);
        // Winter solstice: noon elevation 90 - 50.11 - 23.44 = 16.45°.
        let winter = sun(FRANKFURT.0, FRANKFURT.1, solar_noon_ms(FRANKFURT.1, DECEMBER_21));
        let elevation = 90.0 - winter.cos_zenith.acos().to_degrees();
        assert!((elevation - 16.45).abs() < 0.3, "elevation {elevation}");
    }

    #[test]
    fn clear_sky_and_plane_of_array_are_plausible() {
        let overhead = Sun { cos_zenith: 1.0, azimuth_deg: 180.0, extraterrestrial: 1361.0 };
        assert!((clear_sky_ghi(&overhead) - 1035.1).abs() < 1.0);
        let flat = PvSystem { kwp: 1.0, azimuth_deg: 180.0, tilt_deg: 0.0, performance_ratio: 1.0 };
        // A horizontal plane receives exactly the GHI.
        let noon = sun(FRANKFURT.0, FRANKFURT.1, solar_noon_ms(FRANKFURT.1, JUNE_21));
        let ghi = clear_sky_ghi(&noon);
        assert!((plane_of_array(&noon, ghi, &flat) - ghi).abs() < 1e-9);
        // In winter a steep south-facing plane gets more than the horizontal.
        let winter = sun(FRANKFURT.0, FRANKFURT.1, solar_noon_ms(FRANKFURT.1, DECEMBER_21));
        let steep = PvSystem { tilt_deg: 60.0, ..flat };
        let winter_ghi = clear_sky_ghi(&winter);
        assert!(plane_of_array(&winter, winter_ghi, &steep) > 1.8 * winter_ghi);
        // Overcast light is nearly all diffuse: orientation hardly matters.
        let north = PvSystem { azimuth_deg: 0.0, tilt_deg: 30.0, ..flat };
        let south = PvSystem { tilt_deg: 30.0, ..flat };
        let dim = 0.15 * ghi;
        let ratio = plane_of_array(&noon, dim, &north) / plane_of_array(&noon, dim, &south);
        assert!(ratio > 0.9, "overcast north/south ratio {ratio}");
    }
}
