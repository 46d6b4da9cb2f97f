-- county_region: county -> DFPS region lookup (data contract §2).
SELECT c.county_code AS COUNTY_CODE,
       c.county_name AS COUNTY_NAME,
       c.region      AS REGION,
       c.region_name AS REGION_NAME
  FROM county c
 ORDER BY c.county_code
